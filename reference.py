"""The reference engine: a MADE computed exactly as made.py writes it, for training and stepping
through the paper's equations (train.py --reference; MADE(..., reference=True)).

MADE hands its forward pass, gradients and log-likelihoods to an engine. engine.py's Engine
computes them fast (the weights stored with their units sorted by degree, the products cut to the
masks' staircases, buffers reused, the loss arranged for speed). This one computes them as written:
the weights in the data's numbering (model.layout_params is natural_params()), the masks of eqs.
12–13 multiplied in full (made.masked_layers), made.forward_pass and made.backward_pass, and
autograd's plain Bernoulli NLL. With optim.py's rules as written (fast=False), a training step is
then nothing but the equations. On 2 CPU cores a step costs 1.0 to 1.5 times the fast one (the
more the larger the model: benchmarks/reference_step.py), and the tests hold the two to the same
numbers.
"""
import numpy as np

import backend
from autograd import bernoulli_nll_per_variable
from engine import parameter_units, reorder
from made import dense_loss_and_grads, forward_pass, mask_matrices, masked_layers


class ReferenceEngine:
    """made.py's functions behind the engine's interface (engine.Engine's methods, the same numbers).
    layers, params (host arrays in the data's numbering), degrees (the first mask's, per source),
    activation, gpu, dtype: as Engine takes them."""

    def __init__(self, layers, params, degrees, activation, gpu, dtype):
        self.layers, self.activation, self.xp, self.dtype = layers, activation, backend.array_module(gpu), dtype
        self.params = {name: backend.to_device(value, gpu, dtype) for name, value in params.items()}
        self.units = parameter_units(layers)
        self.use_mask(degrees)

    def natural(self, name, array):
        return array.copy()  # (the layout is the data's numbering)

    from_natural = natural

    def in_order(self, name, orders):
        rows, columns = self.units[name]
        return reorder(self.params[name], orders[rows], None if columns is None else orders[columns])

    def use_mask(self, degrees, key=None):
        self.masks = mask_matrices(degrees, self.layers, self.xp, self.dtype)

    def forward(self, x):
        return forward_pass(self.layers, masked_layers(self.layers, self.params, self.masks), self.activation, x)[0]

    def loss_and_grads(self, x):
        return dense_loss_and_grads(self.layers, self.params, self.masks, self.activation, x)

    def log_prob(self, x, batch_size, after_batch=None, variables=None):
        """log p(x) = −Σ_d (softplus(a_d) − x_d a_d), batch by batch (over `variables` only, when given)."""
        net, kept = masked_layers(self.layers, self.params, self.masks), slice(None)
        if variables is not None:
            kept = self.xp.asarray(np.flatnonzero(variables))
        log_p = []
        for start in range(0, x.shape[0], batch_size):
            batch = x[start:start + batch_size]
            logits = forward_pass(self.layers, net, self.activation, batch)[0]
            log_p.append(-bernoulli_nll_per_variable(logits, batch)[:, kept].sum(axis=1))
            if after_batch is not None:
                after_batch()
        return self.xp.concatenate(log_p)
