"""Hot reload: hear a model while it trains.

    live = adac.HotReload(48000, name="MyReverb", controls={"rt60": True}, path="build/live/model.dsp")
    for step in range(steps):
        ...optimiser step...
        live.update(model)          # re-emits; publishes only when the code changed

The running host (``hosts/hotreload``: a JUCE plugin and a command-line host,
built by ``build_host``) watches the file, compiles the new code off the audio
thread with libfaust, crossfades to it and keeps every slider by its address.

Publishing writes a temp file in the same folder and renames it over the
target, so a reader sees the old file or the new one, never half of either.
Two publishers on one path: each publish is a whole file and the last rename
wins; an advisory lock (``fcntl.flock`` on ``<path>.lock``) serialises the
write-and-rename, and a publisher that cannot take it at once skips (returns
False) instead of waiting: the training loop is never blocked.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path
from typing import Callable

from . import toolchain
from .errors import AdacError
from .fileio import write_text_atomic

HOST_DIR = toolchain.REPO_ROOT / "hosts" / "hotreload"


class HotReload:
    """Publisher of a training model's FAUST code to a watched file.

    Args:
        fs: sample rate of the generated code.
        name, controls: passed to ``adac.flamo_to_faust``.
        path: the published ``.dsp`` (default ``build/live/<name>.dsp``).
        every_n_steps: publish at most every n-th ``update`` call.
        min_interval_s: and at most once per this many seconds (``force`` skips both).
        emit: ``emit(model) -> str``; default ``adac.flamo_to_faust(model, fs, name, controls)``.
    """

    def __init__(self, fs: int, name: str = "adac_live", controls: dict | None = None, path=None,
                 every_n_steps: int = 1, min_interval_s: float = 0.05, emit: Callable | None = None):
        if every_n_steps < 1 or min_interval_s < 0:
            raise AdacError("HotReload: every_n_steps must be >= 1 and min_interval_s >= 0")
        self.fs, self.name, self.controls = fs, name, controls
        self.path = Path(path) if path else toolchain.REPO_ROOT / "build" / "live" / f"{name}.dsp"
        self.every_n_steps, self.min_interval_s = every_n_steps, min_interval_s
        self._emit = emit
        self.steps = 0
        self.published = 0
        self._last_time = float("-inf")
        self._last_digest: str | None = None

    def emit(self, model) -> str:
        if self._emit is not None:
            return self._emit(model)
        from . import flamo_to_faust

        return flamo_to_faust(model, self.fs, name=self.name, controls=self.controls)

    def update(self, model, force: bool = False) -> bool:
        """Re-emit ``model``; publish if the code changed and the throttle allows. Returns True if published."""
        self.steps += 1
        if not force:
            if (self.steps - 1) % self.every_n_steps:
                return False
            if time.monotonic() - self._last_time < self.min_interval_s:
                return False
        return self.publish(self.emit(model))

    def publish(self, code: str) -> bool:
        """Write ``code`` atomically unless it is what was last published. Never waits for a lock."""
        digest = hashlib.sha256(code.encode()).hexdigest()
        if digest == self._last_digest:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another publisher is writing: never block the training loop
            try:
                write_text_atomic(self.path, code)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._last_digest = digest
        self._last_time = time.monotonic()
        self.published += 1
        return True


def build_host(build_dir=None, *, plugin: bool = True, jobs: int = 2) -> dict[str, Path]:
    """Build the hot-reload hosts with CMake + Ninja; returns {"cli": path[, "vst3": ..., "standalone": ...]}."""
    build_dir = Path(build_dir or toolchain.REPO_ROOT / "build" / "hotreload").resolve()
    cmake = os.environ.get("ADAC_CMAKE", "cmake")
    if not (build_dir / "CMakeCache.txt").exists():
        toolchain.run([cmake, "-S", str(HOST_DIR), "-B", str(build_dir), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                       f"-DADAC_HOTRELOAD_PLUGIN={'ON' if plugin else 'OFF'}"], "CMake configure of the hot-reload host")
    else:
        toolchain.run([cmake, f"-DADAC_HOTRELOAD_PLUGIN={'ON' if plugin else 'OFF'}", str(build_dir)], "CMake reconfigure")
    toolchain.run([cmake, "--build", str(build_dir), "--parallel", str(jobs)], "hot-reload host build")
    built = {"cli": build_dir / "adac-hotreload-render"}
    artefacts = build_dir / "AdacHotReload_artefacts" / "Release"
    if plugin:
        built["vst3"] = artefacts / "VST3" / "AdacHotReload.vst3"
        built["standalone"] = artefacts / "Standalone" / "AdacHotReload"
    missing = [str(p) for p in built.values() if not p.exists()]
    if missing:
        raise AdacError(f"hot-reload host build produced no {', '.join(missing)}")
    return built
