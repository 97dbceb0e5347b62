"""Train a MADE from the command line, with the paper's protocol by default.

    python train.py                                   # 784-500-784 on binarized MNIST, AdaGrad 0.01
    python train.py --hidden 8000,8000 --direct --init orthogonal --masks 32 --gpu
    python train.py --resume --out runs/my-run        # continue an interrupted run exactly

Every epoch: one pass over the training set in random minibatches (resampling the mask before each
when --masks is not 1), then the validation NLL; training stops when it has not improved for
--patience epochs (the paper's look-ahead), and the best parameters are evaluated on the test set.
The run folder (--out) holds model.npz (the best model), checkpoint.npz (the latest state, for
--resume), metrics.json, train.log and learning_curve.png.
"""
import argparse
import json
import math
import os
import platform
import signal
import sys
import time

import numpy as np

import backend
import data
import optim
from made import INITS, SHUFFLES, MADE, CheckpointError
from autograd import ACTIVATIONS

RESUMABLE_FLAGS = ("epochs", "gpu", "out", "resume", "force", "data_dir", "eval_batch_size")


# ----------------------------------------------------------------------------------------------
# Flags


def positive_int(text):
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def non_negative_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 0, not {text}")
    return value


def positive_float(text):
    value = _number(text, float)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def non_negative_float(text):
    value = _number(text, float)
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, not {text}")
    return value


def hidden_sizes(text):
    """'500' → [500]; '8000,8000' → [8000, 8000]; '' or 'none' → [] (the shallow MADE, needs --direct)."""
    if text.strip().lower() in ("", "none"):
        return []
    return [positive_int(part) for part in text.split(",")]


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None


def build_parser(suppress_defaults=False):
    """The flags; with suppress_defaults, only flags given on the command line appear in the result."""
    parser = argparse.ArgumentParser(
        description="Train a MADE (Germain et al. 2015) on binary data; defaults reproduce the paper's "
                    "784-500-784 binarized-MNIST protocol.",
        argument_default=argparse.SUPPRESS if suppress_defaults else None)

    def add(*names, **kwargs):
        if suppress_defaults:
            kwargs.pop("default", None)
        parser.add_argument(*names, **kwargs)

    add("--dataset", default="binarized_mnist",
        help=f"a named data set ({', '.join(data.DATASETS)}) or the path of an .npz "
             "(train_data, valid_data, test_data) or NAME_train.amat file (default: %(default)s)")
    add("--data-dir", default=None, help="folder of the named data sets (default: $MADE_DATA_DIR, else ~/.cache/made)")
    add("--hidden", type=hidden_sizes, default=[500],
        help="hidden layer sizes, comma-separated, e.g. 500 or 8000,8000; 'none' for the shallow MADE (default: 500)")
    add("--activation", choices=sorted(ACTIVATIONS), default="relu", help="hidden activation (default: %(default)s)")
    add("--direct", action="store_true", default=False, help="add the masked direct input→output connection")
    add("--cond-mask", action="store_true", default=False,
        help="add the authors' mask-conditioning term (a learned, mask-dependent bias) to every masked layer")
    add("--init", choices=INITS, default="uniform", help="weight initialisation (default: %(default)s, Glorot's range)")
    add("--ordering", choices=("random", "natural"), default="random", help="ordering of the first mask (default: %(default)s)")
    add("--masks", type=non_negative_int, default=1,
        help="masks in the training cycle, resampled before every minibatch; 1: one fixed mask; "
             "0: a fresh mask for every minibatch (default: %(default)s)")
    add("--shuffle", choices=SHUFFLES, default="full",
        help="what each new mask resamples: full (ordering and connectivity), ordering, connectivity, "
             "or once (nothing: one mask) (default: %(default)s)")
    add("--test-masks", type=positive_int, default=None,
        help="masks in the test ensemble, log p(x) = log mean_k p(x | mask k) "
             "(default: the training cycle's size, 1000 for --masks 0)")
    add("--valid-masks", type=positive_int, default=None,
        help="masks in the validation ensemble each epoch (default: the training cycle's size, at most 32)")
    add("--optimizer", choices=sorted(optim.OPTIMIZERS), default="adagrad", help="update rule (default: %(default)s)")
    add("--lr", type=positive_float, default=None,
        help="learning rate (default: 0.01 for adagrad and sgd, 1e-3 for adam, 1 for adadelta)")
    add("--decrease", type=non_negative_float, default=0.0,
        help="sgd only: the learning rate at step t is lr / (1 + decrease·t) (default: %(default)s)")
    add("--rho", type=positive_float, default=None, help="adadelta only: decay of its running averages (default: 0.95)")
    add("--eps", type=positive_float, default=None,
        help="the ε of adagrad, adadelta and adam (defaults: 1e-6, 1e-6, 1e-8)")
    add("--batch-size", type=positive_int, default=100, help="examples per minibatch (default: %(default)s)")
    add("--epochs", type=positive_int, default=1000, help="the most epochs to train (default: %(default)s)")
    add("--patience", type=positive_int, default=30,
        help="stop after this many epochs without a better validation NLL (the paper's look-ahead; default: %(default)s)")
    add("--eval-batch-size", type=positive_int, default=1000, help="examples per evaluation batch (default: %(default)s)")
    add("--dtype", choices=("float32", "float64"), default="float32",
        help="floating-point type of the model and data (default: %(default)s; float64 is slower)")
    add("--seed", type=non_negative_int, default=1234, help="seed of all randomness: weights, masks, minibatches (default: %(default)s)")
    add("--gpu", action="store_true", default=False, help="run on a CUDA GPU through CuPy")
    add("--out", default=None, help="run folder (default: runs/DATASET-DATE-TIME)")
    add("--resume", action="store_true", default=False, help="continue the run in --out from its checkpoint")
    add("--force", action="store_true", default=False, help="start afresh in an --out folder that holds a run")
    return parser


def parse_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.explicit = set(vars(build_parser(suppress_defaults=True).parse_args(argv)))
    if not args.hidden and not args.direct:
        parser.error("--hidden none (the shallow MADE) needs --direct")
    if args.rho is not None and args.rho >= 1:
        parser.error("--rho must be below 1")
    if args.resume and args.force:
        parser.error("--resume and --force contradict each other")
    if args.resume and not args.out:
        parser.error("--resume needs --out, the run folder to continue")
    if args.dataset not in data.DATASETS and not os.path.exists(os.path.expanduser(args.dataset)):
        parser.error(f"--dataset: {args.dataset!r} is neither a known data set ({', '.join(data.DATASETS)}) "
                     "nor an existing file")
    args.lr = optim.DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    cycle = args.masks if args.shuffle != "once" else 1
    args.test_masks = args.test_masks or (cycle if cycle > 0 else 1000)
    args.valid_masks = args.valid_masks or (min(cycle, 32) if cycle > 0 else 32)
    if args.out is None:
        name = os.path.splitext(os.path.basename(args.dataset))[0]
        args.out = os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    return args


def run_config(args):
    """The flags that define a run (what --resume must agree with), as a JSON-able dict."""
    return {key: value for key, value in sorted(vars(args).items()) if key not in RESUMABLE_FLAGS + ("explicit",)}


# ----------------------------------------------------------------------------------------------
# Output


class Log:
    """Print to the terminal and append to train.log in the run folder."""

    def __init__(self, path):
        self.path = path

    def __call__(self, message):
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr, flush=True)  # clear a progress line first
        print(message, flush=True)
        with open(self.path, "a") as file:
            file.write(message + "\n")


def progress(epoch, done, total, started):
    """A line within long epochs, so a slow run is never silent (rewritten in place on a terminal)."""
    rate = done / max(time.perf_counter() - started, 1e-9)
    line = f"  epoch {epoch}: {done}/{total} examples ({100 * done / total:.0f}%), {rate:.0f} ex/s"
    end = "\r" if sys.stderr.isatty() else "\n"
    print(line, end=end, file=sys.stderr, flush=True)


def plot_learning_curve(history, path, title, best_epoch):
    """train and valid NLL per epoch, and the epoch whose weights were kept, as a PNG written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(epochs, [row["train_nll"] for row in history], label="train (running mean over minibatches)")
    axes.plot(epochs, [row["valid_nll"] for row in history], label="valid")
    axes.axvline(best_epoch, linestyle=":", color="gray", label=f"best valid (epoch {best_epoch}), kept")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("NLL (nats)")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    with backend.atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=100)
    plt.close(figure)


def write_json(path, value):
    with backend.atomic_write(path, "w") as file:
        json.dump(value, file, indent=2)
        file.write("\n")


# ----------------------------------------------------------------------------------------------
# Training


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, an unusable checkpoint); the message says what to do."""


def train_one_epoch(model, optimizer, train_x, rng, batch_size, epoch, quiet=False, stop=None):
    """One pass over the training set in random minibatches; the mean training NLL.

    Per minibatch: forward and backward, one optimizer step, then the next mask of the cycle. The
    loss is summed on the device and read once at the end, so a GPU never waits for the host.
    """
    n_train = train_x.shape[0]
    order = backend.to_device(rng.permutation(n_train), model.gpu)
    total_loss = model.xp.zeros((), dtype=np.float64)
    started = last_progress = time.perf_counter()
    # A diverging run overflows before its loss turns NaN; train() reports that in one line after
    # the epoch, so NumPy's own warnings would only be noise.
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n_train, batch_size):
            batch = train_x[order[start:start + batch_size]]
            loss, grads = model.nll_and_grads(batch)
            optimizer.step(grads)
            total_loss += loss * batch.shape[0]
            model.next_mask()
            if stop is not None:
                stop.check()
            if not quiet and time.perf_counter() - last_progress > 5:
                progress(epoch, start + batch.shape[0], n_train, started)
                last_progress = time.perf_counter()
    return float(total_loss) / n_train


def evaluate_nll(model, x, n_masks, batch_size):
    """Per-example NLL (host float64 array) under the ensemble of masks 0 … n_masks−1."""
    log_p = model.log_prob(x, n_masks=n_masks, batch_size=batch_size)
    return -backend.to_host(log_p).astype(np.float64)


def save_checkpoint(path, model, optimizer, rng, status, history, args):
    """Everything --resume needs, in one atomic .npz: current weights and mask, optimizer state,
    minibatch RNG state, the stopping status and the history."""
    arrays = model.state_arrays()
    arrays.update({f"optim.{key}": value for key, value in optimizer.state_dict().items()})
    arrays["train_state"] = backend.json_array({"status": status, "history": history, "rng": rng.bit_generator.state,
                                                "run_config": run_config(args)})
    backend.save_npz(path, arrays)


def load_checkpoint(path, args):
    """(model, optimizer, rng, status, history) from a checkpoint written by save_checkpoint."""
    try:
        arrays = backend.read_npz(path)
        state = backend.read_json_array(arrays.get("train_state", np.array(0)), f"{path}: train_state")
        model = MADE.from_state_arrays(arrays, path, gpu=args.gpu)
    except (backend.FileFormatError, CheckpointError) as error:
        raise TrainingError(f"cannot resume: {error}") from None
    if not _valid_train_state(state, run_config(args)):
        raise TrainingError(f"cannot resume: {path} lacks a valid training state")
    saved = state["run_config"]
    clashes = sorted(key for key in args.explicit & set(saved) if saved[key] != run_config(args).get(key))
    if clashes:
        flags = ", ".join("--" + key.replace("_", "-") for key in clashes)
        raise TrainingError(f"cannot resume: {flags} not as in the run in {os.path.dirname(path)} "
                            f"(leave them out to continue it, or use --force to start afresh)")
    for key, value in saved.items():
        setattr(args, key, value)
    try:
        optimizer = optim.make_optimizer(args.optimizer, model.params, args.lr, args.decrease, args.rho, args.eps)
        optimizer.load_state_dict({key[len("optim."):]: value for key, value in arrays.items() if key.startswith("optim.")})
        rng = backend.random_generator(0)
        rng.bit_generator.state = state["rng"]
    except (ValueError, TypeError, KeyError) as error:
        raise TrainingError(f"cannot resume: {path} has a broken optimizer or RNG state ({error})") from None
    return model, optimizer, rng, state["status"], state["history"]


def _valid_train_state(state, current_config):
    """The shape of what save_checkpoint writes: known flags only, a sane status, a history list."""
    if not isinstance(state, dict) or not {"status", "history", "rng", "run_config"} <= set(state):
        return False
    status, saved = state["status"], state["run_config"]
    numbers = ("epoch", "best_epoch", "epochs_without_improvement")
    def same_kind(old, new):
        if old is None or new is None:
            return True
        if isinstance(new, bool) or isinstance(old, bool):
            return type(old) is type(new)
        return isinstance(old, (int, float)) if isinstance(new, (int, float)) else type(old) is type(new)
    positive = ("batch_size", "patience", "eval_batch_size", "lr", "valid_masks", "test_masks")
    return (isinstance(saved, dict) and set(saved) <= set(current_config)
            and all(same_kind(saved[key], current_config[key]) for key in saved)
            and all(saved.get(key) is None or saved[key] > 0 for key in positive)
            and isinstance(status, dict) and all(isinstance(status.get(key), int) and status[key] >= 0 for key in numbers)
            and isinstance(status.get("best_valid"), (int, float)) and isinstance(status.get("train_seconds"), (int, float))
            and isinstance(state["history"], list) and len(state["history"]) == status["epoch"]
            and isinstance(state["rng"], dict))


def prepare_run_folder(args):
    """Create --out; refuse to overwrite a run unless --resume or --force says what to do."""
    checkpoint = os.path.join(args.out, "checkpoint.npz")
    if args.resume:
        if not os.path.exists(checkpoint):
            raise TrainingError(f"cannot resume: {checkpoint} does not exist")
        return checkpoint
    holds_run = os.path.isdir(args.out) and any(
        os.path.exists(os.path.join(args.out, name)) for name in ("checkpoint.npz", "model.npz", "metrics.json"))
    if holds_run and not args.force:
        raise TrainingError(f"{args.out} already holds a run: pass --resume to continue it or --force to replace it")
    os.makedirs(args.out, exist_ok=True)
    if args.force:
        for name in ("checkpoint.npz", "model.npz", "metrics.json", "train.log", "learning_curve.png"):
            if os.path.exists(os.path.join(args.out, name)):
                os.remove(os.path.join(args.out, name))
    return checkpoint


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived: the loop stopped between two minibatches; the checkpoint is whole."""


class StopSignals:
    """While active, SIGINT and SIGTERM only set a flag, read by the loop between minibatches, so
    no write is ever cut short; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _handle(self, number, frame):
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def check(self):
        if self.requested:
            raise StopRequested()


def train(args):
    """The whole run; returns the metrics dict (also written to metrics.json)."""
    checkpoint_path = prepare_run_folder(args)
    log = Log(os.path.join(args.out, "train.log"))
    if args.resume:
        model, optimizer, rng, status, history = load_checkpoint(checkpoint_path, args)
    splits = data.load(args.dataset, args.data_dir)
    n_in = splits["train"].shape[1]
    if args.resume:
        if model.n_in != n_in:
            raise TrainingError(f"cannot resume: the model has {model.n_in} inputs, {args.dataset} has {n_in}")
        log(f"resuming {args.out} after epoch {status['epoch']}")
    else:
        model = MADE(n_in, args.hidden, activation=args.activation, direct=args.direct, cond_mask=args.cond_mask,
                     ordering=args.ordering, n_masks=args.masks, shuffle=args.shuffle, seed=args.seed,
                     init=args.init, dtype=args.dtype, gpu=args.gpu)
        optimizer = optim.make_optimizer(args.optimizer, model.params, args.lr, args.decrease, args.rho, args.eps)
        rng = backend.random_generator([args.seed, 2])  # minibatch order; streams 0 and 1 are the model's
        status = {"epoch": 0, "best_valid": math.inf, "best_epoch": 0, "epochs_without_improvement": 0,
                  "train_seconds": 0.0}
        history = []
    sizes = "-".join(str(s) for s in [n_in] + model.hidden_sizes + [n_in])
    log(f"MADE {sizes} ({model.n_params} parameters) on {args.dataset}: train {splits['train'].shape[0]}, "
        f"valid {splits['valid'].shape[0]}, test {splits['test'].shape[0]}; {args.optimizer} lr {args.lr}, "
        f"batch {args.batch_size}, masks {args.masks} ({args.shuffle}), {'GPU' if args.gpu else 'CPU'}")
    log(f"independent-pixel baseline: test NLL {data.independent_pixel_nll(splits['train'], splits['test']):.2f}")

    train_x, valid_x = (backend.to_device(splits[s], args.gpu, model.dtype) for s in ("train", "valid"))
    try:
        with StopSignals() as stop:
            run_epochs(args, model, optimizer, rng, status, history, train_x, valid_x, checkpoint_path, log, stop)
    except (KeyboardInterrupt, StopRequested):
        log(f"interrupted during epoch {status['epoch'] + 1}; {checkpoint_path} holds epoch {status['epoch']}: "
            f"continue with --resume --out {args.out}")
        raise
    reason = "patience ran out" if status["epochs_without_improvement"] >= args.patience else "epoch cap reached"
    log(f"stopped after epoch {status['epoch']} ({reason}); best valid NLL {status['best_valid']:.4f} at epoch {status['best_epoch']}")
    return finish(args, splits, status, history, log)


def run_epochs(args, model, optimizer, rng, status, history, train_x, valid_x, checkpoint_path, log, stop):
    """Epochs until the cap or the look-ahead runs out. After each: the validation NLL, the best
    model saved when it improved, and a checkpoint of everything (status and history updated in place)."""
    n_train = train_x.shape[0]
    while status["epoch"] < args.epochs and status["epochs_without_improvement"] < args.patience:
        epoch = status["epoch"] + 1
        started = time.perf_counter()
        train_nll = train_one_epoch(model, optimizer, train_x, rng, args.batch_size, epoch, stop=stop)
        train_time = time.perf_counter() - started
        if not math.isfinite(train_nll):
            last = f"the last good checkpoint is {checkpoint_path} (epoch {status['epoch']})" \
                if status["epoch"] else "no checkpoint was written"
            raise TrainingError(f"epoch {epoch}: the training loss became {train_nll} (try a smaller --lr); {last}")
        valid_nll = float(evaluate_nll(model, valid_x, args.valid_masks, args.eval_batch_size).mean())
        seconds = time.perf_counter() - started
        improved = valid_nll < status["best_valid"]
        status.update(epoch=epoch, train_seconds=status["train_seconds"] + seconds)
        if improved:
            status.update(best_valid=valid_nll, best_epoch=epoch, epochs_without_improvement=0)
            model.save(os.path.join(args.out, "model.npz"))
        else:
            status["epochs_without_improvement"] += 1
        history.append({"epoch": epoch, "train_nll": train_nll, "valid_nll": valid_nll,
                        "seconds": seconds, "examples_per_second": n_train / train_time})
        save_checkpoint(checkpoint_path, model, optimizer, rng, status, history, args)
        log(f"epoch {epoch:4d}  train {train_nll:9.4f}  valid {valid_nll:9.4f}  {seconds:6.1f} s  "
            f"{n_train / train_time:8.0f} ex/s{'  *' if improved else ''}")
        stop.check()


def finish(args, splits, status, history, log):
    """Evaluate the best model on the test set; write metrics.json and the learning curve."""
    best = MADE.load(os.path.join(args.out, "model.npz"), gpu=args.gpu)
    test_x = backend.to_device(splits["test"], args.gpu, best.dtype)
    started = time.perf_counter()
    test_nll = evaluate_nll(best, test_x, args.test_masks, args.eval_batch_size)
    stderr = float(test_nll.std(ddof=1) / math.sqrt(len(test_nll))) if len(test_nll) > 1 else float("nan")
    log(f"test NLL {test_nll.mean():.4f} ± {stderr:.4f} (standard error; {args.test_masks}-mask ensemble, "
        f"{time.perf_counter() - started:.1f} s)")
    best_row = history[status["best_epoch"] - 1]
    metrics = {
        "train_nll": best_row["train_nll"], "valid_nll": status["best_valid"],
        "test_nll": float(test_nll.mean()), "test_nll_stderr": stderr,
        "best_epoch": status["best_epoch"], "epochs_run": status["epoch"], "train_seconds": status["train_seconds"],
        "seconds_per_epoch": status["train_seconds"] / max(status["epoch"], 1),
        "n_params": best.n_params, "n_in": best.n_in,
        "config": dict(run_config(args), model=best.config),
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "device": "gpu" if args.gpu else "cpu"},
        "history": history,
    }
    write_json(os.path.join(args.out, "metrics.json"), metrics)
    plot_learning_curve(history, os.path.join(args.out, "learning_curve.png"),
                        f"MADE on {os.path.basename(args.dataset)}: test NLL {metrics['test_nll']:.2f}",
                        status["best_epoch"])
    return metrics


def main(argv=None):
    args = parse_args(argv)
    try:
        return backend.run_command("train.py", args.gpu, lambda: train(args),
                                   (data.DataError, TrainingError, CheckpointError))
    except (KeyboardInterrupt, StopRequested):
        return 130


if __name__ == "__main__":
    sys.exit(main())
