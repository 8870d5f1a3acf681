"""The runtime backend: the model as data, played by the C++ runtime (``runtime/``, docs/runtime.md).

No code is generated: :func:`runtime_document` gives the IR with its ``realisation`` (the macro-controls as
:func:`adac.analysis.controls.normalise_controls` gives them, and the fractional delays' Lagrange order), and the
runtime, built once per machine (:func:`build_runtime`), reads it. The runtime's render driver is FAUST's
(``faust/arch/render_main.cpp``, with ``--model FILE``), so :mod:`adac.backends.faust.render` renders either.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

from ...analysis.controls import MEASURE, normalise_controls
from ...common import toolchain
from ...common.errors import AdacError
from ...common.fileio import write_text_atomic
from ...common.resources import data_dir
from ...ir.document import check_delay_limits, validate_ir
from ...ir.fractional import DEFAULT_ORDER

CONTROL_FIELDS = ("default", "min", "max", "trained", "gamma_max", "lossless", "law")
RENDERERS = {False: "adac-runtime-render", True: "adac-runtime-render-double"}
TOOLS = (*RENDERERS.values(), "adac-runtime-kinds", "adac-runtime-realtime")


def runtime_document(ir: dict, controls: dict | None = None, fractional_order: int = DEFAULT_ORDER, *,
                     validate: bool = True, delay_limits: dict | None = None, trained=MEASURE) -> dict:
    """The IR as the runtime reads it: ``ir`` plus its ``realisation`` (the normalised macro-controls and the
    fractional delays' Lagrange order). ``validate``: check the IR and its delay bounds first. ``trained``: the rt60
    control's trained T60 when already known (:func:`adac.analysis.controls.normalise_controls`)."""
    if validate:
        validate_ir(ir)
        check_delay_limits(ir, delay_limits)
    normalised = normalise_controls(controls, ir, fractional_order, trained=trained)
    realisation = {"fractional_order": int(fractional_order),
                   "controls": {name: {k: v for k, v in c.items() if k in CONTROL_FIELDS} for name, c in normalised.items()}}
    return {**{k: v for k, v in ir.items() if k != "realisation"}, "realisation": realisation}


def _sources() -> list[Path]:
    """Every file the runtime's build reads (its digest names the build)."""
    root = data_dir("runtime")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".cpp", ".h", ".txt"))
    return files + [data_dir("faust") / "arch" / "render_main.cpp", data_dir("hosts") / "rtcheck" / "rtcheck.h"]


def build_runtime(targets: tuple[str, ...] = TOOLS, *, build_type: str = "Release",
                  options: tuple[str, ...] = ()) -> Path:
    """Build the runtime's targets with CMake + Ninja, once per source digest and configuration (cached under
    ``$ADAC_CACHE/runtime``; concurrent builders wait for each other). Returns the build folder."""
    cmake = os.environ.get("ADAC_CMAKE", "cmake")
    digest = hashlib.sha256()
    for path in _sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(f"{build_type} {' '.join(options)}".encode())
    build = toolchain.cache_dir() / "runtime" / digest.hexdigest()[:24]
    build.mkdir(parents=True, exist_ok=True)
    with open(build / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (build / "CMakeCache.txt").exists():
                toolchain.run([cmake, "-S", str(data_dir("runtime")), "-B", str(build), "-G", "Ninja",
                               f"-DCMAKE_BUILD_TYPE={build_type}", *options], "CMake configure of the runtime")
            toolchain.run([cmake, "--build", str(build), "--target", *targets], "runtime build")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return build


def write_model(document: dict | str) -> Path:
    """A runtime document (a dict, or its JSON text as published) as a file in the cache, named by its content."""
    text = document if isinstance(document, str) else json.dumps(document, sort_keys=True)
    path = toolchain.cache_dir() / "runtime-models" / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    return path


def document_renderer(document: dict | str, *, double: bool = False) -> tuple[str, ...]:
    """The command that renders a runtime document (for :func:`adac.backends.faust.render.impulse_responses` and
    ``process_signal``): the runtime's render driver and its ``--model`` argument."""
    binary = build_runtime() / RENDERERS[double]
    if not binary.exists():
        raise AdacError(f"the runtime build produced no {binary}")
    return (str(binary), "--model", str(write_model(document)))


def build_runtime_renderer(ir: dict, controls: dict | None = None, *, double: bool = False,
                           fractional_order: int = DEFAULT_ORDER, delay_limits: dict | None = None) -> tuple[str, ...]:
    """The command that renders ``ir`` with the runtime (its :func:`runtime_document`): nothing model-specific is
    compiled."""
    return document_renderer(runtime_document(ir, controls, fractional_order, delay_limits=delay_limits), double=double)


def runtime_kinds() -> list[str]:
    """The IR node kinds the runtime realises (its kind table, as the runtime itself lists it)."""
    return toolchain.run([str(build_runtime() / "adac-runtime-kinds")], "listing the runtime's kinds",
                         text=True).stdout.split()
