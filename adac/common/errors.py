"""Errors adac raises for a user's mistake.

Every message names where the problem is: a file, a JSON pointer into the IR,
a manifest field or a module's path in the model (e.g. ``core.feedback.attenuation``).
Command-line entry points catch :class:`AdacError` and print its message
instead of a traceback.
"""
import os
import signal
import sys
import threading


class AdacError(Exception):
    """Base class of every error adac reports to a user."""


class UnsupportedModuleError(AdacError):
    """A FLAMO module that adac cannot translate exactly."""

    def __init__(self, path: str, kind: str, reason: str = "is not supported"):
        self.path, self.kind = path, kind
        super().__init__(f"{path or '<model>'}: {kind} {reason}")


class InvalidParameterError(AdacError):
    """A parameter value that cannot become DSP (NaN/Inf, negative delay, ...)."""


class ChannelMismatchError(AdacError):
    """Channel counts of connected nodes do not agree."""


class SchemaError(AdacError):
    """A document (IR, manifest, certificate) breaks its JSON Schema."""


class ToolchainError(AdacError):
    """An external tool (faust, c++ compiler, cmake) failed or is missing."""


class StabilityError(AdacError):
    """The stability certificate refuses the export (strict mode)."""


INTERRUPTED = 130  # the shell's code for a command stopped by SIGINT (128 + 2)
INTERRUPTED_MESSAGE = "adac: error: interrupted (Ctrl-C)"


def _exit_on_interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    """SIGINT during a command: remove the temp files of writes in progress, print one line, exit 130.

    Not a KeyboardInterrupt: raised inside a C++ extension's callback (torch's import runs through
    pybind11) it aborts the process with a C++ ``terminate`` instead of unwinding, and it can leave
    Python's "unhandled interrupt" flag set so the process dies of SIGINT after printing its message.
    Targets are written by rename, so a target is either whole or not there.
    """
    fileio = sys.modules.get(__package__ + ".fileio")  # never import inside a signal handler
    if fileio is not None:
        fileio.remove_partial_files()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream: nothing to flush
            pass
    os.write(2, (INTERRUPTED_MESSAGE + "\n").encode())
    os._exit(INTERRUPTED)


def exit_code_for_user_errors(action) -> int:
    """Run ``action()``; a user's error becomes one line on stderr and exit code 2 (no traceback).

    Besides :class:`AdacError`: an operating-system failure nothing turned into one (a read-only or
    full disk, a directory given as a file) is reported with its file, also exit 2 (files adac reads go
    through :mod:`adac.common.fileio`, whose errors name the file). Ctrl-C (SIGINT)
    prints one line and exits 130, having removed the temp files of the writes in progress
    (``adac.common.fileio`` writes every target through a temp file and a rename, so no half-written
    target is ever left behind).
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, _exit_on_interrupt)
    try:
        action()
    except AdacError as exc:
        print(f"adac: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"adac: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # SIGINT handled by Python's default handler (not the main thread)
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 0
