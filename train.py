"""Train a MADE from the command line, with the paper's protocol by default.

    python train.py                                   # 784-500-784 on binarized MNIST, AdaGrad 0.01
    python train.py --hidden 8000,8000 --direct --init orthogonal --masks 32 --gpu
    python train.py --resume --out runs/my-run        # continue an interrupted run exactly
    python train.py --resume --out runs/my-run --epochs 200 --lr 1e-4   # train it further, more slowly

Every epoch: one pass over the training set in random minibatches (resampling the mask after each
when --masks is not 1), then the validation NLL; training stops when it has not improved for
--patience epochs (the paper's look-ahead), and the best parameters are evaluated on the test set.
The run folder (--out, see runs.py) holds model.npz (the best model), checkpoint.npz (the latest
state, for --resume), metrics.json, train.log and learning_curve.png. The two .npz files are written
together (every epoch, or every --checkpoint-every epochs and when the run stops), so they always
describe one moment of the run.
"""
if __name__ == "__main__":  # before the imports: closed streams and an early Ctrl-C (startup.py)
    import startup
    startup.begin("train.py")

import argparse
import importlib.util
import math
import os
import sys
import time

import numpy as np

import backend
import cli
import data
import files
import kernels
import optim
import resume
import runs
from autograd import ACTIVATIONS
from config import INITS, SHUFFLES, Config, count_distinct_masks
from made import MADE, model_from_arrays

NOT_SETTINGS = ("out", "resume", "force")  # where and how to start, not what the run is
NOT_FLAGS = ("explicit", "n_in")  # what parse_args and train add to the flags: which were given, D

# ----------------------------------------------------------------------------------------------
# Flags


def build_parser():
    """The flags. parser.flag_actions maps each setting to its argparse action (to check saved settings)."""
    parser = argparse.ArgumentParser(
        description="Train a MADE (Germain et al. 2015) on binary data; defaults reproduce the paper's "
                    "784-500-784 binarized-MNIST protocol.")
    add_data_and_model_flags(parser.add_argument_group("data and model").add_argument)
    add_training_flags(parser.add_argument_group("training").add_argument)
    add_run_flags(parser.add_argument_group("the run").add_argument)
    parser.flag_actions = {action.dest: action for action in parser._actions if action.dest != "help"}
    return parser


def add_data_and_model_flags(add):
    add("--dataset", default="binarized_mnist",
        help=f"a named data set ({', '.join(data.DATASETS)}) or the path of an .npz "
             "(train_data, valid_data, test_data) or NAME_train.amat file (default: %(default)s); the run "
             "keeps the file's absolute path and an order-free fingerprint of its values, so --resume finds it "
             "from any folder, "
             "may be told where it has moved, and refuses a file that changed")
    add("--data-dir", type=cli.path, default=None,
        help="folder of the named data sets (default: $MADE_DATA_DIR, else ~/.cache/made); may change on --resume")
    add("--hidden", type=cli.hidden_sizes, default=[500],
        help="hidden layer sizes, comma-separated, e.g. 500 or 8000,8000; 'none' for the shallow MADE (default: 500)")
    add("--activation", choices=sorted(ACTIVATIONS), default="relu", help="hidden activation (default: %(default)s)")
    add("--direct", action="store_true", default=False, help="add the masked direct input→output connection")
    add("--cond-mask", action="store_true", default=False,
        help="add the authors' mask-conditioning term (a learned, mask-dependent bias) to every masked layer")
    add("--init", choices=INITS, default="uniform", help="weight initialisation (default: %(default)s, Glorot's range)")
    add("--ordering", choices=("random", "natural"), default="random", help="ordering of the first mask (default: %(default)s)")


def add_training_flags(add):
    add("--masks", type=cli.non_negative_int, default=1,
        help="masks in the training cycle: a fixed cycle of this many masks, the model moving to the next one "
             "after every minibatch (made.MADE.next_mask); 1: one fixed mask; 0: a fresh mask for every "
             "minibatch (default: %(default)s)")
    add("--shuffle", choices=SHUFFLES, default="full",
        help="what each new mask resamples: full (ordering and hidden degrees), ordering, connectivity (the hidden degrees), "
             "or once (nothing: one mask) (default: %(default)s)")
    add("--test-masks", type=cli.ensemble_size, default=None,
        help="masks in the test ensemble, log p(x) = log mean_k p(x | mask k), at most the masks trained "
             f"(default: the training cycle's size, at most 1000; 1000 for --masks 0; at most {cli.MAX_ENSEMBLE})")
    add("--valid-masks", type=cli.ensemble_size, default=None,
        help="masks in the validation ensemble each epoch (default: the training cycle's size, at most 32)")
    add("--optimizer", choices=sorted(optim.OPTIMIZERS), default="adagrad", help="update rule (default: %(default)s)")
    add("--lr", type=cli.positive_float, default=None,
        help="learning rate (default: 0.01 for adagrad and sgd, 1e-3 for adam, 1 for adadelta); may change "
             "on --resume, a step schedule: the optimizer's state is kept, and every epoch's rate is in the "
             "run's history")
    add("--decrease", type=cli.non_negative_float, default=0.0,
        help="sgd only: the learning rate at step t is lr / (1 + decrease·t) (default: %(default)s)")
    add("--rho", type=cli.positive_float, default=None, help="adadelta only: decay of its running averages (default: 0.95)")
    add("--eps", type=cli.positive_float, default=None,
        help="the ε of adagrad, adadelta and adam (defaults: 1e-6, 1e-6, 1e-8)")
    add("--weight-decay", type=cli.non_negative_float, default=0.0,
        help="λ of an L2 penalty (λ/2)‖W‖² on the weights (not the biases): every step's gradient gets λθ; the "
             "NLLs reported are without it (default: %(default)s, none, as in the paper)")
    add("--batch-size", type=cli.positive_int, default=100, help="examples per minibatch (default: %(default)s)")
    add("--epochs", type=cli.positive_int, default=1000,
        help="the most epochs to train (default: %(default)s); may be raised on --resume to train a run further")
    add("--patience", type=cli.positive_int, default=30,
        help="stop after this many epochs without a better validation NLL (the paper's look-ahead; default: %(default)s)")
    add("--eval-batch-size", type=cli.positive_int, default=1000,
        help="examples per evaluation batch (default: %(default)s); may change on --resume")


def add_run_flags(add):
    add("--dtype", choices=("float32", "float64"), default="float32",
        help="floating-point type of the model and data (default: %(default)s; float64 is slower)")
    add("--seed", type=cli.non_negative_int, default=1234,
        help="seed of all randomness: weights, masks, minibatches (default: %(default)s)")
    add("--gpu", action="store_true", default=False, help="run on a CUDA GPU through CuPy; may change on --resume")
    add("--reference", action="store_true", default=False,
        help="train through the reference computation, to read or step through the paper's equations: the "
             "dense masked network in the data's numbering (made.py: ReferenceEngine), the plain loss, optim.py's "
             "rules as written; the same numbers as the fast engine, up to 1.5 times slower on a CPU; may change on "
             "--resume")
    add("--out", type=cli.path, default=None, help="run folder (default: runs/DATASET-DATE-TIME)")
    add("--checkpoint-every", type=cli.positive_int, default=1, metavar="N",
        help="write checkpoint.npz and model.npz every N epochs and when the run stops (default: %(default)s); "
             "for big models whose saving costs a noticeable part of an epoch. An interrupted run resumes "
             "from the last one written, so up to N epochs are trained again; may change on --resume")
    add("--resume", action="store_true", default=False,
        help="continue the run in --out from its checkpoint, with all of its settings; flags given again "
             "must match them, except --epochs (to raise the cap), --lr (a step schedule), --gpu, --reference, "
             "--dataset (the same data at another path), --data-dir, --eval-batch-size and --checkpoint-every")
    add("--force", action="store_true", default=False,
        help="start afresh in an --out folder that holds a run or other files: the files of a run there "
             "(checkpoint.npz, model.npz, metrics.json, train.log, learning_curve.png) are replaced")


def parse_args(argv):
    """The flags, checked and completed (derived defaults filled in); args.explicit names the flags
    the command line gave."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.explicit = cli.given_flags(parser, argv)
    if args.resume and args.force:
        parser.error("--resume and --force contradict each other")
    if args.resume and not args.out:
        parser.error("--resume needs --out, the run folder to continue")
    if not args.resume and args.dataset not in data.DATASETS and not os.path.exists(os.path.expanduser(args.dataset)):
        parser.error(f"--dataset: {args.dataset!r} is neither a known data set ({', '.join(data.DATASETS)}) "
                     "nor an existing file")
    if args.dataset not in data.DATASETS:  # a file: the run keeps where it is, to find it from anywhere
        args.dataset = os.path.abspath(os.path.expanduser(args.dataset))
    problem = None if args.resume else ignored_flag(args)
    if problem:
        parser.error(problem)
    if args.out is None:
        name = os.path.splitext(os.path.basename(args.dataset))[0]
        args.out = os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    complete_settings(args)
    problem = None if args.resume else inconsistency(args)
    if problem:
        parser.error(problem)
    return args


def ignored_flag(args):
    """A flag given on the command line that the other settings would ignore, in words, or None:
    a flag that does nothing must not look as if it had been used."""
    for flag, optimizers in (("decrease", ("sgd",)), ("rho", ("adadelta",)), ("eps", ("adagrad", "adadelta", "adam"))):
        if flag in args.explicit and args.optimizer not in optimizers:
            owners = " and ".join([", ".join(optimizers[:-1]), optimizers[-1]] if len(optimizers) > 1 else optimizers)
            return f"--{flag} belongs to {owners}; --optimizer {args.optimizer} does not use it"
    if "shuffle" in args.explicit and args.masks == 1:
        return "--shuffle says what each new mask resamples; --masks 1 trains one mask and never draws another"
    if "shuffle" in args.explicit and args.shuffle == "once":
        return (f"--shuffle once never resamples, so the {args.masks or 'fresh'} masks of --masks {args.masks} "
                f"would all be one: use --masks 1")
    if "data_dir" in args.explicit and args.dataset not in data.DATASETS:
        return (f"--data-dir is where the named data sets live; --dataset {args.dataset} is a file, "
                f"which is read where it is")
    return None


def complete_settings(args):
    """Fill in the defaults that depend on other flags: the learning rate and the ensembles' sizes."""
    args.lr = optim.DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    distinct = count_distinct_masks(args.masks, args.shuffle) or math.inf
    args.test_masks = args.test_masks or min(distinct, 1000)
    args.valid_masks = args.valid_masks or min(distinct, 32)


def inconsistency(args):
    """What is impossible in a combination of settings, or None."""
    distinct = count_distinct_masks(args.masks, args.shuffle)
    if not args.hidden and not args.direct:
        return "--hidden none (the shallow MADE) needs --direct"
    if args.rho is not None and args.rho >= 1:
        return "--rho must be below 1"
    for flag in ("lr", "eps", "rho", "decrease", "weight_decay"):
        value = getattr(args, flag)
        with np.errstate(over="ignore"):
            held = None if value is None else np.dtype(args.dtype).type(value)
        if value and not (np.isfinite(held) and held != 0):
            return (f"--{flag.replace('_', '-')} {value:g} is {held} in {args.dtype} (--dtype): the model could not use "
                    f"it as given; choose a value {args.dtype} holds")
    for flag, size in (("--test-masks", args.test_masks), ("--valid-masks", args.valid_masks)):
        if distinct is not None and size > distinct:
            return (f"{flag} {size}: training uses {distinct} distinct mask{'s' if distinct > 1 else ''} "
                    f"(--masks {args.masks}, --shuffle {args.shuffle}), so an ensemble holds at most {distinct}")
    return None


def settings(args):
    """The flags that define a run (saved in its checkpoint and metrics), as a JSON-able dict."""
    return {key: value for key, value in sorted(vars(args).items()) if key not in NOT_SETTINGS + NOT_FLAGS}


def model_options(args):
    """The MADE constructor's arguments that the flags set."""
    return dict(activation=args.activation, direct=args.direct, cond_mask=args.cond_mask, ordering=args.ordering,
                n_masks=args.masks, shuffle=args.shuffle, seed=args.seed, init=args.init, dtype=args.dtype)


# ----------------------------------------------------------------------------------------------
# Training


def train(args):
    """The whole run, in the run folder it holds locked; returns the metrics (also in metrics.json).
    A new run finds its data before it makes the folder, so a missing or broken data set leaves
    nothing behind; a resumed one reads its settings, its data set's name included, from the
    folder's checkpoint first."""
    if importlib.util.find_spec("matplotlib") is None:  # it draws the learning curve, hours from now
        raise runs.RunError("cannot train: matplotlib is not installed (it draws learning_curve.png at the "
                            "end of the run): pip install -r requirements.txt")
    splits = None if args.resume else data.load(args.dataset, args.data_dir)
    inputs = {} if args.resume else dict.fromkeys(data.locate(args.dataset, args.data_dir), "the --dataset file")
    with runs.open_for_training(args.out, args.resume, args.force, inputs) as folder:
        if args.resume:
            splits, record, model, optimizer, state, best = resume_run(args, folder)
        else:
            (model, optimizer, state), record, best = new_run(args, splits), runs.data_record(args.dataset, splits), None
        describe(args, model, splits, folder.log)
        train_x, valid_x = (backend.to_device(splits[s], args.gpu, model.dtype) for s in ("train", "valid"))
        writer = resume.RunWriter(folder, args.checkpoint_every, state.epoch, record, best)
        with cli.DeferredSignals() as stop:
            try:
                run_epochs(args, model, optimizer, state, train_x, valid_x, writer, stop)
            except KeyboardInterrupt:
                saved = resume.checkpoint_epoch(folder.file("checkpoint.npz"))  # what the folder holds, whatever
                folder.log(resume.interrupted_message(args, state.epoch, saved, folder.file("checkpoint.npz")))
                raise cli.Interrupted() from None
        folder.log(f"stopped after epoch {state.epoch} ({state.stop_reason(args.epochs, args.patience)}); "
                   f"best valid NLL {state.best_valid:.4f} at epoch {state.best_epoch}")
        with cli.DeferredSignals() as stop:
            try:
                return finish(args, splits, state, folder, stop, record, writer.best)
            except KeyboardInterrupt:
                folder.log(f"interrupted during the test evaluation; training is complete: finish it with "
                           f"--resume --out {args.out}")
                raise cli.Interrupted() from None


def new_run(args, splits):
    """(model, optimizer, state) of a run that starts: a fresh MADE of the data's width D."""
    n_in = args.n_in = splits["train"].shape[1]  # (args.n_in: for memory_advice)
    if n_in < 2:
        raise data.DataError(f"{args.dataset} has {n_in} variable; a MADE needs at least 2")
    model = MADE(n_in, args.hidden, gpu=args.gpu, reference=args.reference, **model_options(args))
    return model, make_optimizer(args, model), resume.TrainingState(rng=backend.random_generator(args.seed, "minibatches"))


def resume_run(args, folder):
    """--resume: (splits, data record, model, optimizer, state, best model's arrays) of the run in
    the folder, as its checkpoint holds them, each part checked (resume.py): its settings back in
    args, a finished run left alone, its data the data it trained on."""
    path = folder.file("checkpoint.npz")
    checkpoint = resume.load_checkpoint(path, args.gpu, args.reference)
    resume.restore_settings(args, checkpoint.settings, build_parser().flag_actions, path)
    problem = ignored_flag(args)
    if problem:
        raise runs.RunError(f"cannot resume: {problem}")
    problem = inconsistency(args)
    if problem:
        raise runs.RunError(f"cannot resume: the settings in {path} are inconsistent ({problem})")
    resume.refuse_finished(args, checkpoint, folder, Config(checkpoint.model.n_in, args.hidden, **model_options(args)))
    splits = runs.load_run_data(args.dataset, args.data_dir, f"train.py --resume --out {args.out}")
    record = resume.check_data(args, checkpoint, splits)
    args.n_in = checkpoint.model.n_in
    optimizer = make_optimizer(args, checkpoint.model)
    resume.restore_optimizer(optimizer, checkpoint, folder)
    resume.continue_log(args, checkpoint, folder)
    if os.path.lexists(folder.file("metrics.json")):
        os.remove(folder.file("metrics.json"))  # it describes an earlier end: the run goes on, or ends anew
    return splits, record, checkpoint.model, optimizer, checkpoint.state, checkpoint.best


def make_optimizer(args, model):
    return optim.make_optimizer(args.optimizer, model, args.lr, args.decrease, args.rho, args.eps,
                                fast=not args.reference, weight_decay=args.weight_decay)


def describe(args, model, splits, log):
    """The run's first lines: where it is, the model, the data, the optimizer, and the baseline to beat."""
    log(f"run folder {args.out}")
    sizes = "-".join(str(s) for s in [model.n_in] + model.hidden_sizes + [model.n_in])
    log(f"MADE {sizes} ({model.n_params} parameters) on {args.dataset}: train {splits['train'].shape[0]}, "
        f"valid {splits['valid'].shape[0]}, test {splits['test'].shape[0]}; {args.optimizer} lr {args.lr}, "
        f"batch {args.batch_size}, masks {args.masks} ({args.shuffle}), {device_name(args.gpu)}")
    log(f"independent-pixel baseline: test NLL {data.independent_pixel_nll(splits['train'], splits['test']):.2f}")
    log("each epoch: its number, the training NLL (the mean over its minibatches), the validation NLL, the "
        "seconds of training and validation, the training examples per second of training; * a new best")
    if args.reference:
        log("training through the reference computation (made.py's dense masked network in the data's numbering, "
            "the plain loss, optim.py's rules as written): the same numbers as the fast engine, more slowly")


def device_name(gpu):
    """CPU or GPU; on a GPU, which engine (kernels.py's fused one unless MADE_GPU_UNFUSED=1) and
    whether CuPy was told to run float32 matrix products in TF32."""
    if not gpu:
        return "CPU"
    engine = "fused kernels" if kernels.fused() else "unfused (MADE_GPU_UNFUSED=1)"
    return f"GPU, {engine}" + (", TF32 matrix products (CUPY_TF32)" if backend.tf32_requested() else "")


def run_epochs(args, model, optimizer, state, train_x, valid_x, writer, stop):
    """Epochs until the cap or the look-ahead runs out. After each: the validation NLL, and the
    best model and a checkpoint of everything written when due (see RunWriter). A stop request ends
    the loop at the next minibatch or evaluation batch with KeyboardInterrupt (one that comes after
    an epoch's last batch has both files written first); the last checkpoint is whole."""
    n_train, folder = train_x.shape[0], writer.folder
    while not state.stop_reason(args.epochs, args.patience):
        epoch = state.epoch + 1
        started = time.perf_counter()
        order = backend.to_device(state.rng.permutation(n_train), args.gpu)
        # A diverging run overflows before its loss turns NaN; that is reported below in one line,
        # so NumPy's own warnings would only be noise.
        with np.errstate(over="ignore", invalid="ignore"):
            train_nll = float(optim.train_epoch(model, optimizer, train_x, order, args.batch_size,
                                                runs.Progress(f"epoch {epoch}", "examples", stop.check)))
        train_time = time.perf_counter() - started
        if not math.isfinite(train_nll):
            raise diverged(args, folder, epoch, "training loss", train_nll, writer.saved_epoch)
        progress = runs.Progress(f"epoch {epoch}, validation ({args.valid_masks} masks)", "batches", stop.check)
        with np.errstate(over="ignore", invalid="ignore"):
            valid_nll = float(runs.nll_per_example(model, valid_x, args.valid_masks, args.eval_batch_size,
                                                   progress).mean())
        if not math.isfinite(valid_nll):
            raise diverged(args, folder, epoch, "validation NLL", valid_nll, writer.saved_epoch)
        seconds = time.perf_counter() - started
        improved = state.record(train_nll, valid_nll, seconds, n_train / train_time, args.lr)
        folder.log(f"epoch {epoch:4d}  train {train_nll:9.4f}  valid {valid_nll:9.4f}  {seconds:6.1f} s  "
            f"{n_train / train_time:8.0f} ex/s{'  *' if improved else ''}")
        last = bool(state.stop_reason(args.epochs, args.patience))
        writer.epoch_done(model, optimizer, state, improved, settings(args), last, stop)
        stop.check()


def diverged(args, folder, epoch, what, value, saved_epoch):
    """The error that stops a run whose loss is no longer finite, also written to its train.log.
    Nothing of that epoch is saved: the folder holds the run at its last finite checkpoint."""
    if saved_epoch:
        kept = (f"{folder.file('checkpoint.npz')} holds epoch {saved_epoch}, as it was: continue it at a smaller "
                f"rate with --resume --out {args.out} --lr …")
    else:
        kept = "no epoch was saved: start again with a smaller --lr"
    causes = [f"too high a learning rate, --lr {args.lr}"]
    if args.weight_decay:
        causes.append(f"too strong a penalty, --weight-decay {args.weight_decay}")
    if "eps" in args.explicit:
        causes.append(f"too small an ε, --eps {args.eps}")
    message = f"epoch {epoch}: the {what} became {value} ({' or '.join(causes)}); {kept}"
    files.append_line(folder.file("train.log"), message)
    return runs.RunError(message)


def finish(args, splits, state, folder, stop, record, best_arrays):
    """Evaluate the best model (the checkpoint's, best_arrays) on the test set; write metrics.json,
    which names that model by its digest, and the learning curve."""
    best = model_from_arrays(best_arrays, folder.file("checkpoint.npz"), args.gpu, args.reference)
    test_x = backend.to_device(splits["test"], args.gpu, best.dtype)
    started = time.perf_counter()
    progress = runs.Progress(f"test ({args.test_masks} masks)", "batches", stop.check)
    test_nll = runs.nll_per_example(best, test_x, args.test_masks, args.eval_batch_size, progress)
    stderr = runs.standard_error(test_nll)
    spread = f" ± {stderr:.4f} (standard error;" if stderr is not None else " (one test example: no standard error;"
    folder.log(f"test NLL {test_nll.mean():.4f}{spread} {args.test_masks}-mask ensemble, "
               f"{time.perf_counter() - started:.1f} s)")
    metrics = {
        "train_nll": state.history[state.best_epoch - 1]["train_nll"], "valid_nll": state.best_valid,
        "test_nll": float(test_nll.mean()), "test_nll_stderr": stderr,
        "best_epoch": state.best_epoch, "epochs_run": state.epoch, "train_seconds": state.train_seconds,
        "seconds_per_epoch": state.train_seconds / max(state.epoch, 1),
        "n_params": best.n_params, "n_in": best.n_in, "model_digest": runs.model_digest(best_arrays),
        "config": dict(settings(args), model=best.config.as_dict()), "data": record,
        "machine": runs.machine_info(args.gpu),
        "history": state.history,
    }
    plot_learning_curve(state.history, folder.file("learning_curve.png"),
                        f"MADE on {os.path.basename(args.dataset)}: test NLL {metrics['test_nll']:.2f}",
                        state.best_epoch)
    resume.write_best_model(folder, best_arrays)
    files.write_json(folder.file("metrics.json"), metrics)  # last: its presence marks the run finished
    return metrics


def plot_learning_curve(history, path, title, best_epoch):
    """train and valid NLL per epoch, the epoch whose weights were kept, and where a --resume changed
    the learning rate, as a PNG written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(epochs, [row["train_nll"] for row in history], label="train (running mean over minibatches)")
    axes.plot(epochs, [row["valid_nll"] for row in history], label="valid")
    axes.axvline(best_epoch, linestyle=":", color="gray", label=f"best valid (epoch {best_epoch}), kept")
    for before, after in zip(history, history[1:]):
        if before.get("lr") != after.get("lr"):
            axes.axvline(before["epoch"] + 0.5, linestyle="--", color="silver",
                         label=f"lr {after['lr']:g} from epoch {after['epoch']}")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("NLL (nats)")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    try:
        files.save_figure(path, figure)
    finally:
        plt.close(figure)


def main(argv=None):
    cli.prepare_streams()
    args = parse_args(argv)
    return cli.run_command("train.py", args.gpu, lambda: train(args), user_errors=(runs.RunError,),
                           memory_advice=lambda: memory_advice(args))


def memory_advice(args):
    """What to try when memory runs out: the flags that size the work, and the direct connection by
    name when its D×D weights are most of the model (args.n_in: D, once the data are loaded)."""
    advice = "try a smaller --batch-size or --eval-batch-size, or fewer --hidden units"
    n_in = getattr(args, "n_in", None)
    if args.direct and n_in:
        sizes = [n_in] + list(args.hidden) + [n_in]
        others = sum(a * b for a, b in zip(sizes, sizes[1:]))
        if n_in * n_in > others:
            advice = (f"the direct connection's {n_in}×{n_in} weights are most of the model: leave out --direct, "
                      f"or {advice}")
    return advice


if __name__ == "__main__":
    sys.exit(main())
