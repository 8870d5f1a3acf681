"""Errors adac raises for a user's mistake.

Every message names where the problem is: a file, a JSON pointer into the IR,
a manifest field or a module's path in the model (e.g. ``core.feedback.attenuation``).
Command-line entry points catch :class:`AdacError` and print its message
instead of a traceback.
"""


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


def exit_code_for_user_errors(action) -> int:
    """Run ``action()``; an AdacError becomes one line on stderr and exit code 2 (no traceback)."""
    import sys

    try:
        action()
    except AdacError as exc:
        print(f"adac: error: {exc}", file=sys.stderr)
        return 2
    return 0
