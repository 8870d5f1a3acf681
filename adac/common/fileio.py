"""Files: atomic output (a reader never sees half a file, a failure leaves nothing behind) and bounded
JSON input (a bad file is an :class:`~adac.common.errors.AdacError` naming it, never a traceback).

An operating-system failure while writing (a read-only or full disk, a folder where the file should
be, a missing permission) is an ``AdacError`` naming the file; nothing is left behind, not even the
temp file.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

from .errors import AdacError, InvalidParameterError, SchemaError
from .schema import pointer

MAX_JSON_DEPTH = 100  # nested arrays/objects in a JSON document we read
_PARTIAL: set[str] = set()  # temp files of writes in progress (removed on Ctrl-C: adac.common.errors)


def remove_partial_files() -> None:
    """Remove the temp files of the atomic writes in progress (the command is being interrupted)."""
    for tmp in list(_PARTIAL):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def default_permissions(fd: int) -> None:
    """Give a file made by ``mkstemp`` (0600) the permissions of a normal new file: 0666 less the umask."""
    os.fchmod(fd, 0o666 & ~_umask())


def os_error(path, exc: OSError, doing: str = "cannot write") -> AdacError:
    """An ``AdacError`` naming ``path`` for an operating-system failure (read-only, full disk, ...)."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, IsADirectoryError):
        reason = "it is a directory"
    elif isinstance(exc, NotADirectoryError):
        reason = "a part of the path is not a directory"
    return AdacError(f"{path}: {doing} ({reason})")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same directory, then rename.

    Raises :class:`AdacError` naming ``path`` if the system refuses (nothing is left behind)."""
    path = Path(path)
    tmp = None
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        _PARTIAL.add(tmp)
        with os.fdopen(fd, "wb") as handle:
            default_permissions(fd)  # mkstemp makes 0600: give artefacts the permissions of a normal file
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _PARTIAL.discard(tmp)
        tmp = None
    except OSError as exc:
        raise os_error(path, exc) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
            _PARTIAL.discard(tmp)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, document) -> Path:
    return write_text_atomic(path, json.dumps(document, indent=1, sort_keys=False) + "\n")


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a bundle folder (relative names and contents of its files, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path.parent).as_posix().encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------- reading

class _TooLarge(str):
    """A JSON integer literal that no float can hold (kept as text until its place is known)."""


class _Constant(float):
    """``NaN``, ``Infinity`` or ``-Infinity`` as written (a float: a non-finite value the caller judges),
    told apart from a number literal that overflowed to infinity (``1e400``: too large)."""


_PLAIN = {int, float}


def _parse_int(text: str):
    digits = len(text) - text.startswith("-")
    if digits > 309:  # 10**309 > the largest float; also keeps clear of Python's 4300-digit int limit
        return _TooLarge(text)
    value = int(text)
    try:
        float(value)
    except OverflowError:
        return _TooLarge(text)
    return value


def _too_large(source: str, parts: tuple, value) -> InvalidParameterError:
    if isinstance(value, float):
        return InvalidParameterError(f"{source}: {pointer(parts) or '/'}: the number is too large for a float "
                                     "(it reads as infinity)")
    shown = value if len(value) <= 24 else f"{value[:12]}...{value[-6:]} ({len(value)} characters)"
    return InvalidParameterError(f"{source}: {pointer(parts) or '/'}: the number {shown} is too large for a float")


def check_bounds(document, source: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Depth and number bounds of a JSON document (numbers finite and within a float), without recursion:
    a deep document must not overflow our stack either."""
    stack = [(document, (), 0)]
    while stack:
        value, parts, depth = stack.pop()
        if type(value) is float and not math.isfinite(value) or isinstance(value, _TooLarge):
            raise _too_large(source, parts, value)
        if isinstance(value, (list, dict)):
            if depth >= max_depth:
                where = pointer(parts) or "/"
                where = where if len(where) <= 80 else f"{where[:40]}...{where[-30:]}"
                raise SchemaError(f"{source}: {where}: nested more than {max_depth} levels deep")
            if isinstance(value, list) and set(map(type, value)) <= _PLAIN and all(map(math.isfinite, value)):
                continue  # a row of plain finite numbers (the bulk of a document): nothing to look at
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, parts + (k,), depth + 1) for k, v in items)


def read_json(path: str | os.PathLike, what: str = "JSON file", *, max_depth: int = MAX_JSON_DEPTH):
    """Read a JSON document; every failure is an ``AdacError`` naming the file (and the line or field).

    Refused: a missing file, a directory, an unreadable file, bytes that are not UTF-8, invalid JSON,
    a number too large for a float (``1e400``, a 400-digit integer), nesting deeper than ``max_depth``.
    """
    path = Path(path)
    text = read_text(path, what)
    try:
        document = json.loads(text, parse_int=_parse_int, parse_constant=lambda name: _Constant(name))
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise SchemaError(f"{path}: nested more than {max_depth} levels deep") from None
    check_bounds(document, str(path), max_depth)
    return document


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """A UTF-8 text file; every failure is an ``AdacError`` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise os_error(path, exc, f"cannot read the {what}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SchemaError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
