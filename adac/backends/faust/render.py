"""Render FAUST code for real: faust -> C++ -> native binary -> impulse responses.

The generated class is wrapped in ``faust/arch/render.cpp`` and compiled with the
system C++ compiler. Binaries are cached by the hash of (code, flags, architecture),
so re-rendering the same model is cheap.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Union

import numpy as np

from ...common import toolchain
from ...common.fileio import write_bytes_atomic
from ...common.resources import data_dir

RENDER_ARCH = data_dir("faust") / "arch" / "render.cpp"
RENDER_MAIN = data_dir("faust") / "arch" / "render_main.cpp"
CXXFLAGS = ["-std=c++17", "-DFAUSTFLOAT=double"]
DSP_OPT = "-O1"  # a model's own code: quick to build, and renders in milliseconds anyway


def faust_to_cpp(dsp_code: str, *, double: bool = False, extra_flags: tuple[str, ...] = (),
                 architecture: Path | None = None, class_name: str = "mydsp") -> str:
    """Compile FAUST source to C++ with ``faust -lang cpp``; returns the C++ text."""
    with tempfile.TemporaryDirectory(prefix="adac-faust-") as tmp:
        src = Path(tmp) / "model.dsp"
        out = Path(tmp) / "model.cpp"
        src.write_text(dsp_code)
        cmd = [toolchain.faust(), "-lang", "cpp", "-cn", class_name, "-I", str(data_dir("faust"))]
        if double:
            cmd.append("-double")
        cmd += list(extra_flags)
        if architecture is not None:
            cmd += ["-a", str(architecture)]
        cmd += [str(src), "-o", str(out)]
        toolchain.run(cmd, "faust")
        return out.read_text()


def digest(*parts: str) -> str:
    """A short hash of texts, naming a cached build."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _compile_object(source_text: str, name: str, flags: list[str]) -> Path:
    """Compile C++ text to a cached object file."""
    obj = toolchain.cache_dir() / "render" / f"{name}-{digest(source_text, ' '.join(flags))}.o"
    if obj.exists():
        return obj
    obj.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adac-cxx-") as tmp:
        src = Path(tmp) / f"{name}.cpp"
        src.write_text(source_text)
        out = Path(tmp) / f"{name}.o"
        toolchain.run([toolchain.cxx(), *flags, "-c", str(src), "-o", str(out)], f"C++ compile of {name}")
        write_bytes_atomic(obj, out.read_bytes())
    return obj


def build_renderer(dsp_code: str, *, double: bool = False, extra_flags: tuple[str, ...] = ()) -> Path:
    """Return the path of a native renderer for ``dsp_code`` (cached).

    The driver (``render_main.cpp``) is compiled once; each model compiles only
    its generated class (``render.cpp`` architecture) and links.
    """
    key = digest(dsp_code, str(double), " ".join(extra_flags))
    return build_class_renderer(key, lambda: faust_to_cpp(dsp_code, double=double, extra_flags=extra_flags,
                                                          architecture=RENDER_ARCH))


def build_class_renderer(key: str, cpp, include_dirs: tuple[Path, ...] = ()) -> Path:
    """The renderer of a DSP class (cached under ``key``, which must name everything the class depends on):
    ``cpp()`` gives the class inside the ``render.cpp`` architecture, compiled only when not cached."""
    flags = [*CXXFLAGS, *(f"-I{d}" for d in include_dirs)]
    key = digest(key, RENDER_ARCH.read_text(), RENDER_MAIN.read_text(), " ".join(flags), DSP_OPT)
    binary = toolchain.cache_dir() / "render" / f"render-{key}"
    if binary.exists():
        return binary
    main_obj = _compile_object(RENDER_MAIN.read_text(), "render_main", [*CXXFLAGS, "-O2"])
    dsp_obj = _compile_object(cpp(), "render_dsp", [*flags, DSP_OPT])
    with tempfile.TemporaryDirectory(prefix="adac-link-") as tmp:
        tmp_bin = Path(tmp) / "render"
        toolchain.run([toolchain.cxx(), str(main_obj), str(dsp_obj), "-o", str(tmp_bin)], "linking the renderer")
        write_bytes_atomic(binary, tmp_bin.read_bytes())
        os.chmod(binary, 0o755)
    dsp_obj.unlink(missing_ok=True)  # the binary is the cache entry
    return binary


def _settings_args(params: dict[str, float] | None, changes: list[tuple[int, str, float]] | None) -> list[str]:
    args: list[str] = []
    for address, value in (params or {}).items():
        args += ["--set", f"{address}={float(value)!r}"]
    for at, address, value in changes or []:
        args += ["--set-after", str(int(at)), f"{address}={float(value)!r}"]
    return args


def _read_output(stdout: bytes) -> tuple[int, int, np.ndarray]:
    data = np.frombuffer(stdout, dtype="<f8")
    return int(data[0]), int(data[1]), data[2:]


def render_impulse_responses(dsp_code: str, fs: int, n_samples: int, *, double: bool = False,
                             params: dict[str, float] | None = None,
                             changes: list[tuple[int, str, float]] | None = None,
                             extra_flags: tuple[str, ...] = ()) -> np.ndarray:
    """Impulse responses of compiled FAUST code, shape ``(n_samples, n_out, n_in)``.

    ``params`` sets sliders by FAUST address before rendering; ``changes`` sets
    ``(sample, address, value)`` during the render. A DSP without inputs gives ``n_in = 1``.
    """
    return impulse_responses(build_renderer(dsp_code, double=double, extra_flags=extra_flags), fs, n_samples,
                             params=params, changes=changes)


def render_signal(dsp_code: str, fs: int, signal: np.ndarray, *, double: bool = False,
                  params: dict[str, float] | None = None,
                  changes: list[tuple[int, str, float]] | None = None) -> np.ndarray:
    """Process ``signal`` (shape ``(n, n_in)``) through one instance; returns ``(n, n_out)``."""
    return process_signal(build_renderer(dsp_code, double=double), fs, signal, params=params, changes=changes)


Renderer = Union[Path, tuple]  # a renderer binary, or (binary, its own arguments...) such as the runtime's --model


def _command(renderer: Renderer, fs: int, n_samples: int, *args: str) -> list[str]:
    """The render driver's command line: ``binary fs n [args] [the renderer's own arguments]``."""
    binary, *own = (renderer,) if isinstance(renderer, (str, Path)) else renderer
    return [str(binary), str(int(fs)), str(int(n_samples)), *args, *map(str, own)]


def impulse_responses(renderer: Renderer, fs: int, n_samples: int, *, params: dict[str, float] | None = None,
                      changes: list[tuple[int, str, float]] | None = None) -> np.ndarray:
    """:func:`render_impulse_responses` with a built renderer (:func:`build_renderer`, :func:`build_class_renderer`,
    :func:`adac.backends.runtime.build_runtime_renderer`)."""
    proc = toolchain.run(_command(renderer, fs, n_samples, *_settings_args(params, changes)), "rendering")
    n_in, n_out, raw = _read_output(proc.stdout)
    return raw.reshape(max(1, n_in), n_samples, n_out).transpose(1, 2, 0).copy()


def process_signal(renderer: Renderer, fs: int, signal: np.ndarray, *, params: dict[str, float] | None = None,
                   changes: list[tuple[int, str, float]] | None = None) -> np.ndarray:
    """:func:`render_signal` with a built renderer."""
    signal = np.ascontiguousarray(signal, dtype="<f8")
    with tempfile.NamedTemporaryFile(suffix=".f64") as handle:
        handle.write(signal.tobytes())
        handle.flush()
        proc = toolchain.run(_command(renderer, fs, signal.shape[0], "--input", handle.name,
                                      *_settings_args(params, changes)), "rendering")
    _, n_out, raw = _read_output(proc.stdout)
    return raw.reshape(signal.shape[0], n_out).copy()
