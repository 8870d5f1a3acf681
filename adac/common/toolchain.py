"""Where adac finds the external tools, overridable by environment variables.

``ADAC_FAUST`` (faust compiler), ``CXX`` (C++ compiler), ``ADAC_CACHE`` (build cache).
"""
from __future__ import annotations

import os
import shutil
import subprocess
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
