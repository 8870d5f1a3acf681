"""Hot reload: hear a model while it trains.

    live = adac.HotReload(48000, name="MyReverb", controls={"dry_wet": True}, path="build/live/model.json")
    for step in range(steps):
        ...optimiser step...
        live.update(model, step=step, loss=loss.item())   # re-extracts; publishes only when the model changed

``update`` publishes the model as the C++ runtime reads it: the JSON of
``adac.backends.runtime.runtime_document(ir, controls)`` (the IR and its realisation), no code. The running host
(``hosts/hotreload``: a JUCE plugin and a command-line host, built by ``build_host``) watches the file and loads
it with the runtime (``runtime/``), with no compiler: when only numbers changed (the usual training step, or a delay
within its line's capacity) the playing instance takes the new values at a block boundary and its state goes on;
otherwise (a new structure) the host builds a new instance and crossfades to it. Every slider keeps its value by
address. ``publish(code)`` writes hand-written FAUST code (a ``.dsp``), which the host compiles with libfaust
as before. See docs/hotreload.md.

The extractor is incremental (:class:`adac.frontend.flamo.live.LiveExtractor`): the first ``update``
extracts the model's structure (and validates the IR once); later steps re-read only the parameter
values. The document is ``runtime_document(adac.flamo_to_json(model, fs, name=name), controls)``, exactly; the IR
is validated again only after a change of structure (modules, shapes, constructor arguments), which the extractor
detects and extracts in full; the delay limits are checked at every step (a delay may grow).

Each published file starts with a tag line, ``// adac-publish`` followed by ``step=<int>`` and
``loss=<repr of a float>`` when ``update`` (or ``publish``) was given them; the host lists publishes by
it (its ``history``) and strips it before it reads the document or the code.

Publishing writes a temp file in the same folder and renames it over the target, so a reader
sees the old file or the new one, never half of either. Two publishers on one path: each publish
is a whole file and the last rename wins; an advisory lock (``fcntl.flock`` on ``<path>.lock``)
serialises the write-and-rename, and a publisher that cannot take it at once skips (returns
False, counts it in ``skipped``, and publishes that text at its next chance) instead of waiting.

The training loop never waits for the host. What ``update`` does cost is the extractor (a few ms to
tens of ms per step, most of it FLAMO's own filter coefficients; see bench/hotreload_e2e.py) and the JSON text
(1 ms at 16 lines, 6 ms at 64 with a GEQ per line); ``background=True`` moves it to a worker thread:
``update`` then only snapshots the model's parameters (``state_dict``, cheap; the first call also
deep-copies the model once) and the worker emits and publishes the newest snapshot with its tags,
dropping older ones it had no time for.
"""
from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import operator
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from ..analysis.controls import MEASURE
from ..backends.runtime import runtime_document
from ..common.errors import AdacError
from ..common.fileio import default_permissions, os_error
from ..frontend.flamo.live import LiveExtractor
from ..ir.document import check_delay_limits
from .host import CommandLineHost, build_host

__all__ = ["CommandLineHost", "HotReload", "build_host", "tag_line"]

TAG = "// adac-publish"


def tag_line(step=None, loss=None) -> str:
    """The first line of a published file: ``// adac-publish[ step=<int>][ loss=<repr of a float>]``."""
    words = [TAG]
    if step is not None:
        if isinstance(step, bool) or not hasattr(step, "__index__"):
            raise AdacError(f"HotReload: step must be an integer, got {step!r}")
        words.append(f"step={operator.index(step)}")
    if loss is not None:
        try:
            words.append(f"loss={float(loss)!r}")
        except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of more than one value
            raise AdacError(f"HotReload: loss must be a number (a float or a one-element tensor), got {loss!r}") from None
    return " ".join(words)


class HotReload:
    """Publisher of a training model to a watched file, as the runtime's IR document (see the module doc).

    Args:
        fs: sample rate of the model's IR.
        name: the IR's name; controls: the macro-controls (as for ``adac.backends.runtime.runtime_document``).
        path: the published file (default ``build/live/<name>.json`` under the working folder).
        every_n_steps: publish at most every n-th ``update`` call.
        min_interval_s: and at most once per this many seconds (``force`` skips both).
        emit: ``emit(model) -> str`` (the text to publish: a runtime document's JSON or FAUST code); default the
            incremental FLAMO frontend then :func:`runtime_document` as JSON.
        background: emit and publish on a worker thread (see the module doc); ``flush()`` waits for it.
        trained_every_s: with the rt60 control, the trained T60 (the knob's default and the decay law's T0) is
            measured on the model (a simulation of its impulse response: tens of milliseconds at 16 lines, about a
            second at 64) at most once per this many seconds, and after every change of structure; the steps in
            between publish the last measurement. At the knob's default the model plays exactly as trained either
            way (the default is that T0); a moved knob scales the decay against a T0 at most this old. 0: every step.
    """

    def __init__(self, fs: int, name: str = "adac_live", controls: dict | None = None, path=None,
                 every_n_steps: int = 1, min_interval_s: float = 0.05, emit: Callable | None = None,
                 background: bool = False, trained_every_s: float = 1.0):
        if every_n_steps < 1 or min_interval_s < 0 or not trained_every_s >= 0:
            raise AdacError("HotReload: every_n_steps must be >= 1, min_interval_s and trained_every_s >= 0")
        self.fs, self.name, self.controls = fs, name, controls
        self.path = Path(path) if path else Path("build") / "live" / f"{name}.json"
        if self.path.is_dir():
            raise AdacError(f"HotReload: {self.path} is a directory: give the path of the file to publish")
        self.every_n_steps, self.min_interval_s = every_n_steps, min_interval_s
        self._emit = emit
        self.extractor = LiveExtractor(fs, name=name)  # the default emitter's frontend (its ``extractions``)
        self._validated = 0  # the extractor's extractions when the IR was last validated with the controls
        self.trained_every_s = trained_every_s
        self._trained = None  # the rt60 control's trained T60 as last measured (None: lossless, or no rt60)
        self._measured_at = float("-inf")
        self.steps = 0       # update() calls
        self.published = 0   # files written
        self.skipped = 0     # publishes skipped because another publisher held the lock
        self.errors: list[str] = []  # background mode: emitter exceptions (the worker keeps going)
        self._last_time = float("-inf")
        self._last_digest: str | None = None
        self._lock = threading.Lock()  # publish() from the worker and the caller
        self.background = background
        self._shadow = None
        self._pending = None
        self._busy = False
        self._wake = threading.Condition()
        self._worker: threading.Thread | None = None

    def emit(self, model) -> str:
        """The text ``update`` publishes for ``model``: the runtime document's JSON (or what ``emit`` gives)."""
        if self._emit is not None:
            return self._emit(model)
        try:
            return json.dumps(self.document(model), separators=(",", ":"), allow_nan=False)
        except ValueError as error:  # NaN or infinity: JSON has neither, and the runtime would refuse it
            raise AdacError(f"HotReload: the model's document holds a number that is not finite ({error}): "
                            "not published") from None

    def document(self, model) -> dict:
        """The runtime document of ``model`` now (:func:`adac.backends.runtime.runtime_document`)."""
        ir = self.extractor(model)
        # the extractor validated the IR when it read the structure; a later step changed numbers only (a delay
        # may have grown: its limits are checked every step, cheaply)
        structure = self.extractor.extractions != self._validated
        if not structure:
            check_delay_limits(ir)
        measure = structure or time.monotonic() - self._measured_at >= self.trained_every_s
        document = runtime_document(ir, self.controls, validate=structure, trained=MEASURE if measure else self._trained)
        if measure:
            self._trained = document["realisation"]["controls"].get("rt60", {}).get("trained")
            self._measured_at = time.monotonic()
        self._validated = self.extractor.extractions
        return document

    def update(self, model, force: bool = False, *, step=None, loss=None) -> bool:
        """Re-emit ``model``; publish if the text (the document) changed and the throttle allows.

        ``step`` (an integer) and ``loss`` (a number or a one-element tensor) go into the file's tag line.
        Returns True if a file was written (background mode: if a snapshot was queued for the worker).
        """
        tag = tag_line(step, loss)
        self.steps += 1
        if not force:
            if (self.steps - 1) % self.every_n_steps:
                return False
            if time.monotonic() - self._last_time < self.min_interval_s:
                return False
        if self.background:
            return self._queue(model, tag)
        self._last_time = time.monotonic()
        return self._write(self.emit(model), tag)

    def publish(self, code, *, step=None, loss=None) -> bool:
        """Write the tag line and ``code`` (FAUST code, or a runtime document: a dict or its JSON) atomically
        unless it is what was last published (whatever the tags). Never waits for another publisher."""
        if isinstance(code, dict):
            try:
                code = json.dumps(code, separators=(",", ":"), allow_nan=False)
            except ValueError as error:
                raise AdacError(f"HotReload.publish: the document holds a number that is not finite ({error})") from None
        if not isinstance(code, str):
            raise AdacError(f"HotReload.publish: expected FAUST code or a runtime document, got {type(code).__name__}")
        return self._write(code, tag_line(step, loss))

    def _write(self, code: str, tag: str) -> bool:
        digest = hashlib.sha256(code.encode()).hexdigest()
        with self._lock:
            if digest == self._last_digest:
                return False
            try:
                if self.path.is_dir():
                    raise IsADirectoryError(21, "Is a directory", str(self.path))
                self.path.parent.mkdir(parents=True, exist_ok=True)
                lock_path = self.path.with_name(self.path.name + ".lock")
                with open(lock_path, "a") as lock:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        self.skipped += 1
                        return False  # another publisher is writing: never block the training loop
                    try:
                        _replace(self.path, f"{tag}\n{code}")
                    finally:
                        fcntl.flock(lock, fcntl.LOCK_UN)
            except OSError as exc:  # a directory in the way, a read-only or full disk: named, not a traceback
                raise os_error(self.path, exc, "HotReload: cannot publish") from None
            self._last_digest = digest
            self._last_time = time.monotonic()
            self.published += 1
            return True

    # --- background mode ---------------------------------------------------------------------

    def _queue(self, model, tag: str) -> bool:
        if hasattr(model, "state_dict") and hasattr(model, "load_state_dict"):
            if self._shadow is None:
                self._shadow = copy.deepcopy(model)  # once; later steps copy only the parameters
            snapshot = ("state", {k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            snapshot = ("object", model)
        self._last_time = time.monotonic()
        with self._wake:
            self._pending = snapshot + (tag,)  # newest wins: an older snapshot not yet emitted is dropped
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="adac-hotreload-publisher", daemon=True)
                self._worker.start()
            self._wake.notify()
        return True

    def _work(self) -> None:
        while True:
            with self._wake:
                while self._pending is None:
                    self._wake.wait()
                kind, payload, tag = self._pending
                self._pending = None
                self._busy = True
            try:
                if kind == "state":
                    self._shadow.load_state_dict(payload)
                    payload = self._shadow
                self._write(self.emit(payload), tag)
            except Exception as error:  # noqa: BLE001 - reported, the training goes on
                self.errors.append(f"{type(error).__name__}: {error}")
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Background mode: wait until the newest snapshot is published. Returns False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            while self._pending is not None or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._wake.wait(remaining)
        return True


def _replace(path: Path, text: str) -> None:
    """Temp file in the same folder, then rename over ``path``: readers see the old or the new file, whole.

    No fsync (unlike ``adac.common.fileio``): a live file needs atomicity, not durability across a power
    cut, and an fsync can stall the training loop for tens of milliseconds on a busy disk. The file gets
    the permissions of a normal new file (0666 less the umask, 0644 usually), like every other artefact.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            default_permissions(fd)  # mkstemp makes 0600
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
