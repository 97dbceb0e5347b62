"""Ancestral sampling from a MADE, and completion of partly observed data: the library behind
sample.py (which adds pictures and a command line).

    samples = sample(model, 100, seed=0)                   # (100, D) array of 0/1
    filled = complete(model, x, observed, n=5, seed=0)      # (N, 5, D): observed values kept

Ancestral sampling draws x_o(1), x_o(2), … in the model's ordering o, each from p(x_d | x_<d).
The obvious way runs one full forward pass per variable: D passes per sample (sample_naive, kept as
the reference). But hidden unit k depends only on the inputs at positions ≤ m(k): it can be
computed once, as soon as those inputs are drawn, and output d needs only the units with
m(k) < position of d. sample_fast does exactly that, so a whole sample costs at most one forward
pass plus D small steps, for any depth and with every option.

Both samplers turn the same uniforms u into the same samples: x_o(p) = 1 when a_o(p) > logit(u_p),
which is u_p < σ(a_o(p)), with the logit of the uniforms computed once for all positions.
"""
import numpy as np

import backend
from autograd import ACTIVATIONS
from made import group_by_pattern


def sample_naive(model, uniforms, given=None, n_given=0):
    """Reference sampler: a full forward pass for each position p ≥ n_given (O(D · parameters)).

    uniforms: (N, D), uniforms[:, p] decides the variable at position p of model.ordering.
    given: (N, D) values for the first n_given positions (completion), or None.
    """
    thresholds = _logit(uniforms)
    x = model.xp.zeros(uniforms.shape, dtype=model.dtype)
    if n_given:
        first = model.xp.asarray(model.ordering[:n_given])
        x[:, first] = model.xp.asarray(given, dtype=model.dtype)[:, first]
    masked = model.masked_weights()
    for position in range(n_given, model.n_in):
        d = int(model.ordering[position])
        x[:, d] = model.reference_forward(x, masked)[:, d] > thresholds[:, position]
    return x


def sample_fast(model, uniforms, given=None, n_given=0):
    """Exact ancestral sampling in at most one forward pass (same arguments as sample_naive).

    Sort the inputs by position and each hidden layer's units by degree m, and every mask
    becomes a staircase: a unit of degree m sees exactly a prefix of the layer below (the units of
    degree ≤ m; for an output at position p, those of degree < p). So no mask is needed: at
    position p, draw x_p from the prefix sums, then compute the units of degree p, layer by layer,
    from their prefixes. Each unit is computed once, when its last input is known.
    """
    xp, n_layers, n_in = model.xp, len(model.hidden_sizes), model.n_in
    activate = ACTIVATIONS[model.activation][0]
    net = _staircase(model)
    thresholds = _logit(uniforms)
    x = xp.zeros(uniforms.shape, dtype=model.dtype)  # columns in sampling order: x[:, p] = x_o(p)
    if n_given:
        x[:, :n_given] = xp.asarray(given, dtype=model.dtype)[:, xp.asarray(model.ordering[:n_given])]
    hidden = [xp.zeros((x.shape[0], size), dtype=model.dtype) for size in model.hidden_sizes]
    for p in range(n_in):
        if p >= n_given:
            logit = net["output_bias"][p]
            if n_layers:
                seen = net["below"][-1][p]  # last-layer units of degree < p
                logit = logit + hidden[-1][:, :seen] @ net["output"][p, :seen]
            if model.direct:
                logit = logit + x[:, :p] @ net["direct"][p, :p]
            x[:, p] = logit > thresholds[:, p]
        for layer in range(n_layers):
            first, end = net["below"][layer][p], net["upto"][layer][p]  # the units of degree p
            if first == end:
                continue
            fan_in = p + 1 if layer == 0 else net["upto"][layer - 1][p]
            below = x if layer == 0 else hidden[layer - 1]
            z = below[:, :fan_in] @ net["weights"][layer][first:end, :fan_in].T + net["biases"][layer][first:end]
            hidden[layer][:, first:end] = activate(z)
    samples = xp.empty_like(x)
    samples[:, xp.asarray(model.ordering)] = x
    return samples


def _staircase(model):
    """The model's weights in the current mask's sorted layout (model.sorted_network): inputs in
    sampling order, hidden units sorted by degree.

    Returns weights[l] (H_l, fan_in) and biases[l] (mask-conditioning included) per hidden layer,
    output (D, H_L) and direct (D, D) for the output layer's incoming weights, output_bias (D,), all
    in the sorted order, and per hidden layer upto[l][p] / below[l][p]: how many of its units have
    degree ≤ p / < p.
    """
    network = model.sorted_network()
    positions = np.arange(model.n_in + 1)
    net = {"weights": [], "biases": [], "upto": [], "below": []}
    for layer, spec in enumerate(model.layers[:-1]):
        net["weights"].append(network.weights[spec.inputs[0][0]])
        net["biases"].append(network.layer_bias(spec))
        sorted_degrees = network.degrees[layer + 1]
        net["upto"].append(np.searchsorted(sorted_degrees, positions, side="right").tolist())
        net["below"].append(np.searchsorted(sorted_degrees, positions, side="left").tolist())
    output = model.layers[-1]
    net["output_bias"] = network.layer_bias(output)
    for name, source in output.inputs:
        net["direct" if source == 0 else "output"] = network.weights[name]
    return net


def _logit(uniforms):
    """log(u / (1 − u)): x = 1[a > logit(u)] is x = 1[u < σ(a)], a Bernoulli(σ(a)) draw."""
    xp = backend.module_of(uniforms)
    with np.errstate(divide="ignore"):  # u = 0 gives −inf: a sure 1, as u < σ(a) would
        return xp.log(uniforms) - xp.log1p(-uniforms)


def sample(model, n, seed=0, method="fast"):
    """n exact samples (n, D) of 0/1 from the model under its current mask, reproducible from seed."""
    uniforms = backend.to_device(backend.random_generator(seed).random((n, model.n_in)), model.gpu, model.dtype)
    return (sample_fast if method == "fast" else sample_naive)(model, uniforms)


def complete(model, x, observed, n=1, seed=0, method="fast"):
    """n completions of each row of x: observed values kept, the rest drawn from p(x_U | x_O).

    x: (N, D) 0/1; observed: (N, D) or (D,) booleans. Each observation pattern gets an ordering
    with its observed variables first (MADE.use_observed_first), so their conditionals need
    nothing unobserved and the rest is ordinary ancestral sampling. Exact under that ordering's
    model, which is a good model only when the model trained on such orderings: over many orderings
    (--masks ≠ 1), or on one that already puts the observed first (a raster ordering and a top half).
    Returns (N, n, D); the current mask is restored afterwards.
    """
    x_host = np.asarray(backend.to_host(x), dtype=np.float64)
    observed = np.broadcast_to(np.asarray(backend.to_host(observed), dtype=bool), x_host.shape)
    sampler = sample_fast if method == "fast" else sample_naive
    rng = backend.random_generator(seed)
    result = np.empty((x_host.shape[0], n, x_host.shape[1]), dtype=np.float32)
    with model.keeping_mask():
        for group, (pattern, rows) in enumerate(group_by_pattern(observed)):
            model.use_observed_first(pattern, seed, group)
            given = np.repeat(x_host[rows], n, axis=0)
            uniforms = backend.to_device(rng.random(given.shape), model.gpu, model.dtype)
            filled = sampler(model, uniforms, backend.to_device(given, model.gpu), int(pattern.sum()))
            result[rows] = backend.to_host(filled).reshape(len(rows), n, -1)
    return result
