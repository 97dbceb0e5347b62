"""A run that goes on: where it stands, the checkpoint that holds all of it, and --resume.

    state = TrainingState(rng)                   # epochs, the best epoch, the look-ahead, the history
    writer = RunWriter(folder, every, ...)       # checkpoint.npz, then model.npz, when due
    checkpoint = load_checkpoint(path, gpu)      # everything the run is, checked
    restore_settings(args, checkpoint.settings, …); refuse_finished(…); check_data(…)   # --resume

checkpoint.npz holds everything a run is: the latest weights and mask, the optimizer's state (in
the data's numbering, as the model file holds the weights), the TrainingState (with the
minibatch generator's state), the run's settings, the record of its data and the best model so
far. So a run interrupted after epoch k and resumed ends with the same parameters and metrics, bit
for bit, as the same run left alone, and every state a crash can leave can be finished. train.py
uses this file in one place (its resume_run); the rest of a run folder is runs.py's.
"""
import argparse
import dataclasses
import math
import os

import numpy as np

import backend
import files
import runs
from made import MADE, CheckpointError, model_arrays, model_from_arrays

# Settings that --resume lets you change; every other flag given again must match the run. (--dataset
# may name the run's data where they are now: the run knows them by their order-free fingerprints,
# runs.data_record.)
RESUME_MAY_CHANGE = ("epochs", "lr", "gpu", "reference", "dataset", "data_dir", "eval_batch_size", "checkpoint_every")

# ----------------------------------------------------------------------------------------------
# Where a run stands


@dataclasses.dataclass
class TrainingState:
    """Where a run stands: what the loop needs to go on and a checkpoint saves, besides the model
    and the optimizer. rng draws the order of the minibatches of every epoch."""
    rng: np.random.Generator
    epoch: int = 0
    best_valid: float = math.inf
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    train_seconds: float = 0.0
    history: list = dataclasses.field(default_factory=list)

    def stop_reason(self, max_epochs, patience):
        """Why training is over ('patience ran out', 'epoch cap reached'), or None while it goes on."""
        if self.epoch > 0 and self.epochs_without_improvement >= patience:
            return "patience ran out"
        if self.epoch >= max_epochs:
            return "epoch cap reached"
        return None

    def record(self, train_nll, valid_nll, seconds, examples_per_second, lr):
        """Add an epoch's row to the history (with the learning rate it trained at, which --resume
        may change); True when its validation NLL is the best so far."""
        self.epoch += 1
        self.train_seconds += seconds
        improved = valid_nll < self.best_valid
        if improved:
            self.best_valid, self.best_epoch, self.epochs_without_improvement = valid_nll, self.epoch, 0
        else:
            self.epochs_without_improvement += 1
        self.history.append({"epoch": self.epoch, "train_nll": train_nll, "valid_nll": valid_nll,
                             "seconds": seconds, "examples_per_second": examples_per_second, "lr": lr})
        return improved

    def to_json(self):
        status = {"epoch": self.epoch, "best_valid": self.best_valid, "best_epoch": self.best_epoch,
                  "epochs_without_improvement": self.epochs_without_improvement, "train_seconds": self.train_seconds}
        return {"status": status, "history": self.history, "rng": self.rng.bit_generator.state}

    @classmethod
    def from_json(cls, value, what):
        """The state saved by to_json, after checking every field; RunError naming `what` otherwise."""
        problem = training_state_problem(value)
        if problem is None:
            try:
                rng = backend.random_generator(0)
                rng.bit_generator.state = value["rng"]
            except (TypeError, ValueError, KeyError, OverflowError):
                problem = "the minibatch generator's state is not a PCG64 state"
        if problem is not None:
            raise runs.RunError(f"cannot resume: {what} holds a damaged training state ({problem})")
        status = value["status"]
        return cls(rng=rng, history=value["history"], **{key: status[key] for key in (
            "epoch", "best_valid", "best_epoch", "epochs_without_improvement", "train_seconds")})


def training_state_problem(value):
    """What is wrong with a saved training state (a JSON value), or None: the counts, their
    relations, and every history row must be what TrainingState.record could have written."""
    def number(x, low=-math.inf):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x) and x >= low

    def count(x):
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    status = value.get("status") if isinstance(value, dict) else None
    history = value.get("history") if isinstance(value, dict) else None
    if not isinstance(status, dict) or not isinstance(history, list) or not isinstance(value.get("rng"), dict):
        return "status, history or generator state missing"
    if not all(count(status.get(key)) for key in ("epoch", "best_epoch", "epochs_without_improvement")):
        return "epoch counts must be whole numbers ≥ 0"
    if not (number(status.get("best_valid")) and number(status.get("train_seconds"), 0)):
        return "best_valid and train_seconds must be numbers"
    epoch, best = status["epoch"], status["best_epoch"]
    if best > epoch or (epoch > 0) != (best > 0) or status["epochs_without_improvement"] != epoch - best:
        return f"best epoch {best} does not fit epoch {epoch}"
    if len(history) != epoch:
        return f"{len(history)} history rows for {epoch} epochs"
    if not all(isinstance(row, dict) and row.get("epoch") == i + 1 and all(
            number(row.get(key)) for key in ("train_nll", "valid_nll", "seconds", "examples_per_second"))
            and number(row.get("lr")) and row["lr"] > 0
            for i, row in enumerate(history)):
        return "a history row is not {epoch, train_nll, valid_nll, seconds, examples_per_second, lr}"
    if epoch and history[best - 1]["valid_nll"] != status["best_valid"]:
        return "best_valid is not the best epoch's validation NLL"
    return None


# ----------------------------------------------------------------------------------------------
# Checkpoints


@dataclasses.dataclass
class Checkpoint:
    """What --resume reads back: the model, the optimizer's arrays (in the data's numbering, as
    Optimizer.state_dict gives them), the state, the run's settings, the record of its data
    (runs.data_record), and the best model's arrays (best_model_arrays)."""
    model: MADE
    optimizer_state: dict
    state: TrainingState
    settings: dict
    data: dict = None
    best: dict = None


def save_checkpoint(path, model, optimizer, state, settings, data=None, best=None):
    """Everything the run is, in one atomic .npz: the current weights and mask, the optimizer's
    state, the TrainingState, the run's settings (its flags), the record of its data, and the best
    model (best: best_model_arrays of state.best_epoch; stored as best.* unless it is the current
    model). The checkpoint alone is the run's truth: model.npz is a copy of its best model, which
    write_best_model makes and a crash between the two writes can always make again."""
    if best is None and state.best_epoch != state.epoch:
        raise ValueError("save_checkpoint: the best model is needed when it is not the current one")
    arrays = model_arrays(model)
    arrays.update({f"optim.{key}": value for key, value in optimizer.state_dict().items()})
    arrays["train_state"] = files.json_array(dict(state.to_json(), run_config=settings, data=data))
    if best is not None and state.best_epoch != state.epoch:
        arrays.update({f"best.{name}": value for name, value in best.items()})
    files.save_npz(path, arrays)


def best_model_arrays(model, epoch):
    """model.npz's arrays: the model (state_arrays) and the epoch whose weights it holds."""
    return dict(model_arrays(model), epoch=np.array(epoch))


def write_best_model(folder, best):
    """Make RUN/model.npz the checkpoint's best model (best: its arrays), unless it already is;
    True when it had to be written."""
    path = folder.file("model.npz")
    try:
        held = files.read_npz(path) if os.path.exists(path) else None
    except files.FileFormatError:
        held = None  # damaged: rewritten
    if held is not None and runs.model_digest(held) == runs.model_digest(best) and held.get("epoch") == best["epoch"]:
        return False
    files.save_npz(path, best)
    return True


def checkpoint_epoch(path):
    """The epoch the checkpoint at `path` holds, read from the file (0 when there is none)."""
    try:
        return int(runs.checkpoint_state(os.path.dirname(os.path.abspath(path)))["status"]["epoch"])
    except (OSError, ValueError, KeyError, TypeError, files.FileFormatError):
        return 0


def load_checkpoint(path, gpu, reference=False):
    """The Checkpoint in `path` (its model on the reference engine with reference); RunError naming
    the file when anything in it is unusable."""
    try:
        arrays = files.read_npz(path)
        saved = files.read_json_array(arrays.get("train_state", np.array(0)), f"{path}: train_state")
        model = model_from_arrays(arrays, path, gpu=gpu, reference=reference)
        best_arrays = {name[len("best."):]: value for name, value in arrays.items() if name.startswith("best.")}
        best_model = model_from_arrays(best_arrays, f"{path}: its best model") if best_arrays else None
    except (files.FileFormatError, CheckpointError) as error:
        raise runs.RunError(f"cannot resume: {error}") from None
    settings = saved.get("run_config") if isinstance(saved, dict) else None
    if not isinstance(settings, dict):
        raise runs.RunError(f"cannot resume: {path} lacks the run's settings")
    optimizer_state = {key[len("optim."):]: value for key, value in arrays.items() if key.startswith("optim.")}
    record = saved.get("data")
    state = TrainingState.from_json(saved, path)
    best = None
    if best_model is not None:
        if best_model.config != model.config or best_arrays.get("epoch") != state.best_epoch:
            raise runs.RunError(f"cannot resume: {path} holds a best model that is not of its run")
        best = best_arrays
    elif state.best_epoch == state.epoch and state.epoch > 0:
        best = best_model_arrays(model, state.epoch)
    else:
        raise runs.RunError(f"cannot resume: {path} lacks its best model")
    return Checkpoint(model, optimizer_state, state, settings, record if isinstance(record, dict) else None, best)


class RunWriter:
    """Writes checkpoint.npz, then model.npz, every `every` epochs and when the run stops.

    The checkpoint is the run's one truth: it holds the best model too (save_checkpoint), so
    whatever a crash leaves, the run can be finished from it; model.npz is a copy of that best
    model, written after it (write_best_model), and made again on --resume if a crash came
    between. Between writes the best model waits in memory (host arrays, as model.npz holds them),
    so the folder never holds a best model newer than its checkpoint. saved_epoch: the
    checkpoint's epoch. data: the run's data record, kept in every checkpoint. best: the best
    model's arrays so far (None before the first epoch).
    """

    def __init__(self, folder, every, saved_epoch, data, best):
        self.folder, self.every, self.saved_epoch, self.data, self.best = folder, every, saved_epoch, data, best
        self.model_epoch = None if best is None else int(best["epoch"])  # whose weights model.npz holds

    def epoch_done(self, model, optimizer, state, improved, settings, last, stop):
        """Called after every epoch: keep the model if it improved; write both files when due: every
        `every` epochs, after the `last` epoch, and when a stop has been requested (stop.requested)."""
        if improved:
            self.best = best_model_arrays(model, state.epoch)
        if last or stop.requested or state.epoch % self.every == 0:
            save_checkpoint(self.folder.file("checkpoint.npz"), model, optimizer, state, settings,
                                 data=self.data, best=self.best)
            self.saved_epoch = state.epoch
            if self.model_epoch != state.best_epoch:  # (model.npz already holds it otherwise)
                files.save_npz(self.folder.file("model.npz"), self.best)
                self.model_epoch = state.best_epoch


# ----------------------------------------------------------------------------------------------
# --resume


def restore_settings(args, saved, actions, checkpoint_path):
    """Make args the run's own settings again: saved values replace the defaults; a flag given again
    must match, unless it is one of RESUME_MAY_CHANGE. actions: setting → its argparse action (the
    flags of train.py). RunError names what does not fit."""
    unknown = sorted(set(saved) - set(actions))
    broken = sorted(key for key in set(saved) - set(unknown) if not valid_setting(actions[key], saved[key]))
    if unknown or broken:
        raise runs.RunError(f"cannot resume: {checkpoint_path} holds settings that no flag can have "
                            f"({', '.join(unknown + broken)})")
    clashes = sorted(key for key in args.explicit & set(saved)
                     if key not in RESUME_MAY_CHANGE and saved[key] != getattr(args, key))
    if clashes:
        flags = ", ".join("--" + key.replace("_", "-") for key in clashes)
        raise runs.RunError(f"cannot resume: {flags} not as in the run in {args.out} (leave them out to "
                            f"continue it; only {', '.join('--' + k.replace('_', '-') for k in RESUME_MAY_CHANGE)} "
                            f"may change)")
    for key, value in saved.items():
        if key not in args.explicit or key not in RESUME_MAY_CHANGE:
            setattr(args, key, value)


def valid_setting(action, value):
    """Whether a saved setting is a value its flag could have produced."""
    if action.const is True:  # a switch
        return isinstance(value, bool)
    if value is None:
        return action.default is None
    if action.choices is not None:
        return isinstance(value, str) and value in action.choices
    if action.type is None:
        return isinstance(value, str)
    text = ",".join(map(str, value)) if isinstance(value, list) else value if isinstance(value, str) else repr(value)
    try:
        return not isinstance(value, bool) and action.type(text) == value
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return False


def refuse_finished(args, checkpoint, folder, model_config):
    """Refuse to change a run whose checkpoint says it is over (but make its model.npz the
    checkpoint's best model again, when it was replaced), a --epochs below what it has trained, and
    a checkpoint whose model is not the one its settings describe (model_config: theirs)."""
    state = checkpoint.state
    if args.epochs < state.epoch:
        raise runs.RunError(f"cannot resume: --epochs {args.epochs} is below the {state.epoch} epochs the run has trained")
    if model_config != checkpoint.model.config:
        raise runs.RunError(f"cannot resume: the model in {folder.file('checkpoint.npz')} is not the one its "
                            "settings describe")
    reason = state.stop_reason(args.epochs, args.patience)
    metrics = runs.read_metrics(folder.path)
    ended = reason and (metrics.get("epochs_run"), metrics.get("best_epoch"), metrics.get("model_digest")) == (
        state.epoch, state.best_epoch, runs.model_digest(checkpoint.best))  # its own end, not another run's metrics
    if ended:
        further = (f"; to train it further, pass a --epochs above {state.epoch}"
                   if reason == "epoch cap reached" else "")
        restored = ""
        if write_best_model(folder, checkpoint.best):
            restored = "; its model.npz, which had been replaced, is the checkpoint's best model again"
        raise runs.RunError(f"{args.out} holds a finished run ({reason} after epoch {state.epoch}): "
                            f"--resume leaves it as it is{further}{restored}")


def check_data(args, checkpoint, splits):
    """The record of the run's data (runs.data_record), which must be that of the data the run
    trained on, wherever they are now: the same fingerprints, split by split."""
    changed = runs.changed_splits(checkpoint.data, splits)
    if changed:
        raise runs.RunError(f"cannot resume: {args.dataset} is not the data the run trained on (its "
                            f"{', '.join(changed)} split{'s' if len(changed) > 1 else ''} changed); pass --dataset "
                            f"with the file it trained on")
    moved = runs.reordered_splits(checkpoint.data, splits)
    if moved:
        raise runs.RunError(f"cannot resume: {args.dataset} holds the run's rows in another order (its "
                            f"{', '.join(moved)} split{'s' if len(moved) > 1 else ''}); the minibatches and sums "
                            f"follow the rows' positions, so the run would not go on exactly: pass --dataset with "
                            f"the rows in the order it trained on")
    if splits["train"].shape[1] != checkpoint.model.n_in:
        raise runs.RunError(f"cannot resume: the model has {checkpoint.model.n_in} inputs, --dataset {args.dataset} "
                            f"has {splits['train'].shape[1]}")
    return runs.data_record(args.dataset, splits)


def restore_optimizer(optimizer, checkpoint, folder):
    """The optimizer's state as the checkpoint holds it; RunError when it does not fit."""
    try:
        optimizer.load_state_dict(checkpoint.optimizer_state)
    except (ValueError, TypeError, KeyError) as error:
        raise runs.RunError(f"cannot resume: {folder.file('checkpoint.npz')} has a broken optimizer "
                            f"state ({error})") from None


def continue_log(args, checkpoint, folder):
    """Make model.npz the checkpoint's best model again (whatever a crash left there), and say in
    train.log where the run goes on from, and at which rate."""
    state, saved_lr = checkpoint.state, checkpoint.settings.get("lr", args.lr)
    write_best_model(folder, checkpoint.best)
    folder.log(f"resuming {args.out} after epoch {state.epoch} (at most {args.epochs} epochs)")
    if saved_lr != args.lr:
        folder.log(f"learning rate {saved_lr} until epoch {state.epoch}, {args.lr} from now on")


def interrupted_message(args, epochs_done, saved_epoch, checkpoint_path):
    if saved_epoch == 0:
        return (f"interrupted during epoch {epochs_done + 1}, before any epoch was saved: nothing to resume; "
                "run the same command again to start over")
    again = ""
    if epochs_done > saved_epoch:
        lost = f"epoch {epochs_done}" if epochs_done == saved_epoch + 1 else f"epochs {saved_epoch + 1}–{epochs_done}"
        again = f" ({lost} will be trained again)"
    return (f"interrupted during epoch {epochs_done + 1}; {checkpoint_path} holds epoch {saved_epoch}{again}: "
            f"continue with --resume --out {args.out}")
