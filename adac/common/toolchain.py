"""Where adac finds the external tools, overridable by environment variables.

``ADAC_FAUST`` (faust compiler), ``CXX`` (C++ compiler), ``ADAC_CACHE`` (build cache), ``ADAC_EIGEN_INCLUDE``
(Eigen's headers).
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import ToolchainError


def tool(name: str, env_var: str) -> str:
    """Resolve an executable, or raise a ToolchainError that says how to install it."""
    exe = os.environ.get(env_var, name)
    found = shutil.which(exe)
    if not found:
        raise ToolchainError(
            f"{exe!r} not found on PATH (set {env_var} or install it: see README 'Set-up')"
        )
    return found


def faust() -> str:
    return tool("faust", "ADAC_FAUST")


def cxx() -> str:
    return tool("g++", "CXX")


def eigen_include() -> Path:
    """Eigen's header folder (the native backend's matrix products): $ADAC_EIGEN_INCLUDE, else Debian's
    ``/usr/include/eigen3`` (package libeigen3-dev)."""
    found = Path(os.environ.get("ADAC_EIGEN_INCLUDE", "/usr/include/eigen3"))
    if not (found / "Eigen" / "Core").is_file():
        raise ToolchainError(f"Eigen headers not found in {found} (install libeigen3-dev or set ADAC_EIGEN_INCLUDE "
                             "to the folder holding Eigen/Core)")
    return found


def cache_dir() -> Path:
    root = Path(os.environ.get("ADAC_CACHE", Path.home() / ".cache" / "adac"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a tool; a failure becomes a ToolchainError carrying its stderr."""
    proc = subprocess.run(cmd, capture_output=True, **kwargs)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr
        raise ToolchainError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd[:3])} ...\n{err.strip()}")
    return proc


_STEP = re.compile(r"^\[(\d+)/(\d+)\] ")  # Ninja's (and CMake's) "[n/m] Building CXX object ..." lines
PROGRESS_STEPS = 10  # a log (not a terminal) gets a line every tenth of the build


def run_with_progress(cmd: list[str], what: str, stream=None) -> None:
    """Run a long build tool, condensing its ``[n/m]`` lines into one progress line on ``stream`` (stderr):
    rewritten in place on a terminal, every tenth of the build in a log. A failure becomes a
    ToolchainError carrying the tool's last lines of output (the compiler's error among them)."""
    stream = stream or sys.stderr
    terminal = stream.isatty()
    tail: collections.deque[str] = collections.deque(maxlen=60)
    shown = -1
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            step = _STEP.match(line)
            if not step:
                continue
            done, total = int(step.group(1)), int(step.group(2))
            tenth = done * PROGRESS_STEPS // max(total, 1)
            if terminal:
                stream.write(f"\r{what}: [{done}/{total}]\x1b[K")
            elif tenth != shown:
                stream.write(f"{what}: [{done}/{total}]\n")
                shown = tenth
            stream.flush()
    if terminal:
        stream.write("\n")
    if proc.returncode != 0:
        raise ToolchainError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd[:3])} ...\n" + "\n".join(tail))
