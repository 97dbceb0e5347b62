"""The first lines of every command line, run before its imports (NumPy's take most of a second):

    if __name__ == "__main__":
        import startup
        startup.begin("train.py")

Standard streams that the caller closed (`2>&-`) are opened on /dev/null, before any import can
open a file that would take their descriptors; and Ctrl-C or SIGTERM while the command is still
starting ends it in one line, status 130, as it does later (cli.run_command takes over from there).
Nothing but the standard library is imported here.
"""
import os
import signal


def reopen_closed_streams():
    """Open /dev/null on each of the descriptors 0, 1 and 2 that is closed, so that none is free."""
    for descriptor, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(descriptor)
        except OSError:
            opened = os.open(os.devnull, mode)  # the lowest free descriptor: this one
            if opened != descriptor:
                os.dup2(opened, descriptor)
                os.close(opened)


def begin(program):
    """Make a command line safe to start: its streams open, its early interrupts one line."""
    reopen_closed_streams()

    def stop(number, frame):
        try:
            os.write(2, f"{program}: interrupted\n".encode())
        except OSError:
            pass
        os._exit(130)  # nothing has been written yet: there is nothing to clean up
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
