"""Ancestral sampling from a MADE, and partly observed data: completion, and the log-likelihood of
an observed part. The library behind sample.py (which adds pictures and a command line) and
evaluate.py --observe.

    samples = sample(model, 100, seed=0)                   # (100, D) array of 0/1
    filled = complete(model, x, observed, n=5, seed=0)      # (N, 5, D): observed values kept
    log_prob_observed(model, x, observed)                   # log p(x_O), (N,)
    log_prob_unobserved(model, x, observed)                 # log p(x_U | x_O), (N,)

Ancestral sampling draws x_o(1), x_o(2), … in the model's ordering o, each from p(x_d | x_<d).
The obvious way runs one full forward pass per variable: D passes per sample (sample_naive, kept as
the reference). But hidden unit k depends only on the inputs at positions ≤ m(k): it can be
computed once, as soon as those inputs are drawn, and output d needs only the units with
m(k) < position of d. sample_fast does exactly that, so a whole sample costs at most one forward
pass plus D small steps, for any depth and with every option.

Both samplers turn the same uniforms u into the same samples: x_o(p) = 1 when a_o(p) > logit(u_p),
which is u_p < σ(a_o(p)), with the logit of the uniforms computed once for all positions.

Partly observed data need an ordering that puts the observed variables first: their conditionals
then involve nothing unobserved, log p(x_O) is the sum of the first ones, log p(x_U | x_O) of the
rest, and completing x_U is ancestral sampling from the first unobserved position on.
"""
import numpy as np

import backend
from autograd import ACTIVATIONS
from config import is_int, require
from made import layer_biases, mask_matrices, ordering_and_degrees

# ----------------------------------------------------------------------------------------------
# Sampling


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
    net = model.masked_network()
    for position in range(n_given, model.n_in):
        d = int(model.ordering[position])
        x[:, d] = model.reference_forward(x, net)[:, d] > thresholds[:, position]
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
    net = sorted_by_degree(model)
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


def sorted_by_degree(model):
    """The network under the current mask with its units sorted: the inputs in sampling order,
    each hidden layer's units by degree.

    Returns weights[l] (H_l, fan_in) and biases[l] per hidden layer, output (D, H_L) and direct
    (D, D) for the output layer's incoming weights, output_bias (D,), all in the sorted order, and
    per hidden layer upto[l][p] / below[l][p]: how many of its units have degree ≤ p / < p.
    A unit reads only the kept prefix of its sorted row, so the weights need no mask; the biases
    take the mask-conditioning term 1·(U ⊙ M)ᵀ when there is one (made.layer_biases).
    """
    degrees = model.degrees()
    orders = [np.argsort(d, kind="stable") for d in degrees]  # orders[0] is the ordering
    sorted_degrees = [d[order] for d, order in zip(degrees, orders)]
    params = {name: model.engine.get(name, orders) for name in model.params}  # (no copy when already sorted)
    masks = mask_matrices(sorted_degrees, model.layers, model.xp, model.dtype) if model.cond_mask else {}
    biases = layer_biases(model.layers, params, masks)
    positions = np.arange(model.n_in + 1)
    net = {"weights": [], "biases": [], "upto": [], "below": []}
    for layer, spec in enumerate(model.layers[:-1]):
        net["weights"].append(params[spec.inputs[0][0]])
        net["biases"].append(biases[spec.bias])
        net["upto"].append(np.searchsorted(sorted_degrees[layer + 1], positions, side="right").tolist())
        net["below"].append(np.searchsorted(sorted_degrees[layer + 1], positions, side="left").tolist())
    output = model.layers[-1]
    net["output_bias"] = biases[output.bias]
    for name, source in output.inputs:
        net["direct" if source == 0 else "output"] = params[name]
    return net


def _logit(uniforms):
    """log(u / (1 − u)): x = 1[a > logit(u)] is x = 1[u < σ(a)], a Bernoulli(σ(a)) draw."""
    xp = backend.module_of(uniforms)
    with np.errstate(divide="ignore"):  # u = 0 gives −inf: a sure 1, as u < σ(a) would
        return xp.log(uniforms) - xp.log1p(-uniforms)


SAMPLERS = {"fast": sample_fast, "naive": sample_naive}


def sampler_of(method):
    """The sampler a `method` names ('fast' or 'naive'); ValueError otherwise."""
    require(method in SAMPLERS, f"method must be one of {sorted(SAMPLERS)}, not {method!r}")
    return SAMPLERS[method]


def sample(model, n, seed=0, method="fast"):
    """n exact samples (n, D) of 0/1 from the model under its current mask, reproducible from seed."""
    require(is_int(n) and n > 0, f"n must be a positive integer, not {n!r}")
    sampler = sampler_of(method)
    uniforms = backend.to_device(backend.random_generator(seed).random((n, model.n_in)), model.gpu, model.dtype)
    return sampler(model, uniforms)


def sample_mixture(models, n, n_masks=None, seed=0, method="fast"):
    """n exact samples (n, D) of the density mixture_log_prob reports for the same arguments: each
    drawn by choosing a component uniformly (a model, then one of its n_masks[r] masks: masks
    0 … K−1 of its cycle, as its ensemble averages them; None: its current mask), then the
    one-pass ancestral sampler under that mask. One model with n_masks=K samples its K-mask
    ensemble. The models' masks are restored afterwards."""
    require(is_int(n) and n > 0, f"n must be a positive integer, not {n!r}")
    counts = n_masks if isinstance(n_masks, (list, tuple)) else [n_masks] * len(models)
    require(len(models) > 0 and len(counts) == len(models), "one n_masks per model (or one for all)")
    require(all(k is None or (is_int(k) and k > 0) for k in counts), f"n_masks must be positive integers, not {n_masks!r}")
    require(len({model.n_in for model in models}) == 1,
            f"models must be of one width (a mixture is over one data set), not {sorted({m.n_in for m in models})}")
    sampler, rng = sampler_of(method), backend.random_generator(seed, "mixture")
    component = rng.integers(len(models), size=n)
    sizes = np.array([count or 0 for count in counts])[component]
    mask = np.where(sizes > 0, (rng.random(n) * sizes).astype(np.int64), -1)  # −1: the model's current mask
    uniforms = backend.random_generator(seed).random((n, models[0].n_in))
    samples = np.empty((n, models[0].n_in), dtype=np.float32)
    for r, model in enumerate(models):
        with model.keeping_mask():
            for k in np.unique(mask[component == r]):
                rows = np.flatnonzero((component == r) & (mask == k))
                if k >= 0:
                    model.use_mask(model.cycle_index(int(k)))
                drawn = sampler(model, backend.to_device(uniforms[rows], model.gpu, model.dtype))
                samples[rows] = backend.to_host(drawn)
    return samples


# ----------------------------------------------------------------------------------------------
# Partly observed data


def observed_first_ordering(observed, rng):
    """An ordering with the observed variables first, each group in random order. observed: (D,) bool."""
    observed = np.asarray(observed, dtype=bool)
    return np.concatenate([rng.permutation(np.flatnonzero(observed)), rng.permutation(np.flatnonzero(~observed))])


def group_by_pattern(observed):
    """[(pattern (D,), row indices)] for each distinct row of a boolean (N, D) array, in first-seen order."""
    patterns, first, inverse = np.unique(observed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [(patterns[i], np.flatnonzero(inverse == i)) for i in np.argsort(first)]


def puts_first(ordering, pattern):
    """Whether `ordering` lists every observed variable (pattern: (D,) bool) before any other."""
    return bool(np.all(pattern[np.asarray(ordering)[:int(pattern.sum())]]))


def trained_on_one_ordering(model):
    """True when an ordering other than the first is outside what the model learned."""
    return model.n_masks == 1 or model.shuffle in ("connectivity", "once")


def completes_in_own_ordering(model, observed):
    """Whether each observation pattern in `observed` ((N, D) or (D,) bool) comes first in an ordering
    the model trained on: always for a model trained over orderings, and for a model of one ordering
    when that ordering puts every pattern's observed values first (a raster ordering and a top half)."""
    if not trained_on_one_ordering(model):
        return True
    ordering = ordering_and_degrees(model.config, 0)[0]
    observed = np.asarray(observed, dtype=bool).reshape(-1, model.n_in)
    return all(puts_first(ordering, pattern) for pattern, _ in group_by_pattern(observed))


def use_observed_first(model, pattern, seed=0, group=0):
    """Put the model under a mask whose ordering puts the observed variables (pattern: (D,) bool)
    first. A model of one ordering that already does so keeps it (under mask `seed` of its cycle,
    when the connectivity was resampled): that is what it learned. Any other model gets
    observed_first_ordering drawn from [seed, group] (stream "pattern_orderings"), with hidden
    degrees from `seed`: the observed in random order, then the rest."""
    pattern = np.asarray(pattern, dtype=bool)
    if trained_on_one_ordering(model) and puts_first(ordering_and_degrees(model.config, 0)[0], pattern):
        model.use_mask(model.cycle_index(seed))
    else:
        rng = backend.random_generator(seed, "pattern_orderings", group)
        model.use_ordering(observed_first_ordering(pattern, rng), seed)


def complete(model, x, observed, n=1, seed=0, method="fast"):
    """n completions of each row of x: observed values kept, the rest drawn from p(x_U | x_O).

    x: (N, D) 0/1; observed: (N, D) or (D,) booleans. Each observation pattern gets an ordering
    with its observed variables first (use_observed_first), and the rest is ordinary ancestral
    sampling. Exact under that ordering's model, which is a good model only when the model trained
    on such orderings: over many orderings (--masks ≠ 1), or on one that already puts the observed
    first (a raster ordering and a top half). Returns (N, n, D); the current mask is restored
    afterwards.
    """
    require(is_int(n) and n > 0, f"n must be a positive integer, not {n!r}")
    sampler = sampler_of(method)
    x_host = np.asarray(backend.to_host(x), dtype=np.float64)
    require(x_host.ndim == 2 and x_host.shape[1] == model.n_in and x_host.shape[0] > 0,
            f"x must be an (N, {model.n_in}) array with N ≥ 1, not of shape {x_host.shape}")
    require(bool(np.isin(x_host, (0, 1)).all()), "x must hold only 0 and 1 (the observed values are kept as given)")
    observed = _observed_like(observed, x_host.shape)
    rng = backend.random_generator(seed)
    result = np.empty((x_host.shape[0], n, x_host.shape[1]), dtype=np.float32)
    with model.keeping_mask():
        for group, (pattern, rows) in enumerate(group_by_pattern(observed)):
            use_observed_first(model, pattern, seed, group)
            given = np.repeat(x_host[rows], n, axis=0)
            uniforms = backend.to_device(rng.random(given.shape), model.gpu, model.dtype)
            filled = sampler(model, uniforms, backend.to_device(given, model.gpu), int(pattern.sum()))
            result[rows] = backend.to_host(filled).reshape(len(rows), n, -1)
    return result


def _observed_like(observed, shape):
    """observed, (N, D) or (D,) booleans, as an (N, D) boolean array; ValueError when it fits not."""
    observed = np.asarray(backend.to_host(observed))
    require(observed.shape in (shape, shape[1:]) and observed.dtype.kind in "biu" and np.isin(observed, (0, 1)).all(),
            f"observed must be booleans shaped {shape} or ({shape[1]},), not {observed.dtype} of shape {observed.shape}")
    return np.broadcast_to(observed.astype(bool), shape)


def log_prob_observed(model, x, observed, seed=0, batch_size=1000, progress=None):
    """log p(x_O) of the observed values alone, (N,): exact under an ordering that puts the
    observed variables first (their conditionals then involve nothing unobserved), summed over
    their positions. observed: (N, D) or (D,) booleans. One ordering per distinct pattern
    (use_observed_first, from `seed`); the current mask is restored afterwards.
    progress(done, total), if given, is called with the examples scored so far."""
    return _log_prob_in_two_parts(model, x, observed, seed, batch_size, True, progress)


def log_prob_unobserved(model, x, observed, seed=0, batch_size=1000, progress=None):
    """log p(x_U | x_O), (N,): how well the model completes the unobserved values from the
    observed ones. Under the same orderings as log_prob_observed, the sum of the conditionals
    at the positions after the observed ones; log p(x_O) + log p(x_U | x_O) = log p(x) under
    that ordering. progress as in log_prob_observed."""
    return _log_prob_in_two_parts(model, x, observed, seed, batch_size, False, progress)


def _log_prob_in_two_parts(model, x, observed, seed, batch_size, first_part, progress):
    """The conditionals of the observed variables (first_part) or of the rest, summed."""
    x = model.xp.asarray(x, dtype=model.dtype)
    require(x.ndim == 2 and x.shape[1] == model.n_in and x.shape[0] > 0,
            f"x must be an (N, {model.n_in}) array with N ≥ 1, not of shape {x.shape}")
    observed = _observed_like(observed, x.shape)
    result = model.xp.zeros(x.shape[0], dtype=model.dtype)
    done = 0  # examples scored (one ordering per pattern: scattered patterns take long)
    with model.keeping_mask():
        for group, (pattern, rows) in enumerate(group_by_pattern(observed)):
            use_observed_first(model, pattern, seed, group)
            rows = model.xp.asarray(rows)

            def report(batches, _, before=done, in_group=len(rows)):
                if progress is not None:
                    progress(before + min(batches * batch_size, in_group), x.shape[0])
            result[rows] = model.log_prob(x[rows], batch_size=batch_size, progress=report,
                                          variables=pattern if first_part else ~pattern)
            done += len(rows)
    return result
