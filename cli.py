"""What the four command lines share: flag types, one-line errors, and signals.

A user's mistake (a bad flag, a malformed file, a full disk, a missing GPU) ends in one line on
stderr, `program: error: …`, and exit status 2, never a traceback; Ctrl-C or SIGTERM ends in one
line and status 130. Anything else is a bug and propagates with its traceback.
"""
import argparse
import math
import os
import signal
import sys

import backend
import data
import startup
import files
from made import CheckpointError

# The largest ensemble a command line accepts: the gain of more masks has long flattened out by
# then, and each mask costs a full pass over the data.
MAX_ENSEMBLE = 10000
# The largest count any flag accepts (units, examples, epochs, …): far beyond any machine's memory
# already, so a larger number fails in one line here rather than deep inside NumPy.
MAX_COUNT = 2 ** 40

USER_ERRORS = (backend.GPUUnavailable, files.FileFormatError, files.FileWriteError, data.DataError, CheckpointError)

# ----------------------------------------------------------------------------------------------
# Flag types (argparse turns an ArgumentTypeError into `usage … error: argument --flag: …`, status 2)


def _number(text, kind, low, allow_low):
    """text as a number of `kind` (int or float), finite, above `low` (or equal to it, allow_low)
    and, for a count, at most MAX_COUNT; an ArgumentTypeError in words otherwise."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
    if not (value >= low if allow_low else value > low) or not math.isfinite(value):
        wanted = {(int, False): "a positive integer", (int, True): "an integer ≥ 0",
                  (float, False): "a positive number", (float, True): "a number ≥ 0"}[kind, allow_low]
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
    if kind is int and value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most 2^40 = {MAX_COUNT}, not {text}")
    return value


def positive_int(text):
    """A count: 1 … MAX_COUNT."""
    return _number(text, int, 0, False)


def non_negative_int(text):
    """A seed or a count that may be 0: 0 … MAX_COUNT."""
    return _number(text, int, 0, True)


def positive_float(text):
    return _number(text, float, 0, False)


def non_negative_float(text):
    return _number(text, float, 0, True)


def ensemble_size(text):
    """A number of masks for an ensemble: 1 … MAX_ENSEMBLE."""
    value = positive_int(text)
    if value > MAX_ENSEMBLE:
        raise argparse.ArgumentTypeError(f"at most {MAX_ENSEMBLE} masks, not {text}")
    return value


def hidden_sizes(text):
    """'500' → [500]; '8000,8000' → [8000, 8000]; '' or 'none' → [] (the shallow MADE, needs --direct)."""
    if text.strip().lower() in ("", "none"):
        return []
    return [positive_int(part) for part in text.split(",")]


def path(text):
    """A file or folder name: not empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


# ----------------------------------------------------------------------------------------------
# Running a command line


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the work at a safe point; the command has already said what was
    kept and how to go on."""


def prepare_streams():
    """Called first by every command line, so that it works with whatever standard streams it was
    given. A stream that was closed (`2>&-`) is opened on /dev/null: its descriptor must not be
    free, or the next file opened (a run's train.log) would take it and receive the stream's
    output. A terminal that cannot show a character ("±", "≥"), or a name that is not UTF-8 (a
    path given as bytes), gets an escape (\\xb1) instead of an error that would end the command.
    (startup.begin has already done the first, before the imports, when the command was started.)"""
    startup.reopen_closed_streams()
    for name, descriptor, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        if getattr(sys, name) is None:  # Python found the descriptor closed when it started
            setattr(sys, name, open(descriptor, mode, closefd=False, errors="backslashreplace"))
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def given_flags(parser, argv):
    """The destinations of the flags the command line (argv, already parsed once without error)
    gave, defaults aside: to refuse a flag that the mode asked for would ignore."""
    defaults = {action: action.default for action in parser._actions}
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        return set(vars(parser.parse_args(argv)))
    finally:
        for action, default in defaults.items():
            action.default = default


def run_command(program, gpu, body, *, user_errors=(), memory_advice="try smaller sizes"):
    """Run a command line's body; return its exit status.

    The GPU is checked first. SIGTERM is turned into KeyboardInterrupt, so both stop the command
    the same way (train.py defers them to safe points, see DeferredSignals). A user error, exhausted
    memory or an operating-system error is one line on stderr and status 2; an interrupt is one
    line and status 130.
    """
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # (startup.guard's handler ends here)
    try:
        backend.array_module(gpu)
        body()
        return 0
    except (*USER_ERRORS, *user_errors) as error:
        message = str(error)
    except MemoryError as error:  # (CuPy's OutOfMemoryError is one too; its text names the size tried)
        advice = memory_advice() if callable(memory_advice) else memory_advice
        message = f"out of {'GPU memory' if gpu else 'memory'} ({error or 'allocation failed'}); {advice}"
    except OSError as error:
        message = f"{error.filename}: {error.strerror}" if error.filename else str(error)
    except Interrupted:
        return 130
    except KeyboardInterrupt:
        say(f"{program}: interrupted", sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    say(f"{program}: error: {message}", sys.stderr)
    return 2


def say(message, file=None, end="\n"):
    """Print a line; when the reader has gone (a closed pipe, as `| head` leaves), print nothing more
    and carry on: what matters is in the files (a run's train.log)."""
    file = file or sys.stdout
    try:
        print(message, file=file, end=end, flush=True)
    except BrokenPipeError:
        reader_gone(file)


def reader_gone(file):
    """After a BrokenPipeError on `file`: point it at /dev/null, so that nothing more written to
    it, the interpreter's last flush included, fails again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, file.fileno())
    os.close(devnull)


def _raise_keyboard_interrupt(number, frame):
    raise KeyboardInterrupt


class DeferredSignals:
    """While active, Ctrl-C and SIGTERM only set a flag that the work reads at safe points with
    check(), so no write is cut short; a second Ctrl-C interrupts at once."""

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

    def check(self, *_):
        """Raise KeyboardInterrupt when a signal has arrived (takes and ignores progress arguments,
        so it can serve as a progress callback)."""
        if self.requested:
            raise KeyboardInterrupt
