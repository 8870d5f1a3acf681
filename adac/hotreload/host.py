"""The hot-reload hosts (``hosts/hotreload``): a command-line host and a JUCE plugin, built with CMake + Ninja, and
:class:`CommandLineHost`, the command-line host driven from Python."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..common import toolchain
from ..common.errors import AdacError
from ..backends.juce import build_plugin
from ..common.resources import data_dir


TARGETS = ("cli", "plugin")
HOST_DIR_NAME = "hotreload"
SANITIZERS = ("thread", "address", "undefined")


def build_host(build_dir=None, *, targets=TARGETS, jobs: int = 2, juce_build=None,
               sanitize: str | None = None) -> dict[str, Path]:
    """Build the hot-reload hosts with CMake + Ninja (the engine links the runtime, ``runtime/``, built with it).

    ``targets``: any of "cli" (``adac-hotreload-render``, no JUCE: built in ``build_dir``, default
    ``build/hotreload`` under the working folder) and "plugin" (the JUCE VST3 + Standalone: built as one
    more project of the shared JUCE build tree ``juce_build``, default ``build/juce-build``, where it links
    the JUCE modules library every adac plugin of that tree links; JUCE is not compiled again).
    ``sanitize`` ("thread", "address" or "undefined"; "cli" only): the command-line host and everything it compiles
    (engine, runtime) built with ``-fsanitize=<sanitize>``, by default into ``build/hotreload-<sanitize>``.
    Returns ``{"cli": path}`` and/or ``{"vst3": path, "standalone": path}``.
    """
    targets = tuple(targets)
    unknown = set(targets) - set(TARGETS)
    if unknown or not targets:
        raise AdacError(f"build_host: targets must be among {list(TARGETS)}, got {list(targets)}")
    if sanitize is not None and (sanitize not in SANITIZERS or targets != ("cli",)):
        raise AdacError(f"build_host: sanitize must be one of {list(SANITIZERS)} and targets ('cli',), got "
                        f"{sanitize!r} and {list(targets)}")
    source = data_dir("hosts") / HOST_DIR_NAME
    built = {}
    if "cli" in targets:
        default = "hotreload" if sanitize is None else f"hotreload-{sanitize}"
        build_dir = Path(build_dir or Path("build") / default).resolve()
        cmake = os.environ.get("ADAC_CMAKE", "cmake")
        if not (build_dir / "CMakeCache.txt").exists():
            flags = []
            if sanitize:
                flags = [f"-DCMAKE_CXX_FLAGS=-fsanitize={sanitize} -g -fno-omit-frame-pointer",
                         f"-DCMAKE_EXE_LINKER_FLAGS=-fsanitize={sanitize}"]
            toolchain.run([cmake, "-S", str(source), "-B", str(build_dir), "-G", "Ninja",
                           f"-DCMAKE_BUILD_TYPE={'RelWithDebInfo' if sanitize else 'Release'}",
                           "-DADAC_HOTRELOAD_PLUGIN=OFF", *flags], "CMake configure of the hot-reload host")
        toolchain.run([cmake, "--build", str(build_dir), "--parallel", str(jobs), "--target", "adac-hotreload-render"],
                      "hot-reload host build")
        built["cli"] = build_dir / "adac-hotreload-render"
        if not built["cli"].exists():
            raise AdacError(f"hot-reload host build produced no {built['cli']}")
    if "plugin" in targets:
        bundles = build_plugin(source, Path(juce_build or Path("build") / "juce-build"), jobs=jobs)
        built["vst3"], built["standalone"] = bundles["VST3"], bundles["Standalone"]
    return built


class CommandLineHost:
    """``adac-hotreload-render`` as a subprocess, driven by its commands: one command line, one answer line
    (the protocol: the header of ``hosts/hotreload/render_host.cpp`` and docs/hotreload.md).

    ``CommandLineHost(path, fs, "--backend", "tiered", ...)`` watches ``path`` at ``fs``; ``binary``: the host
    (default: built by :func:`build_host`); ``env``: its environment. A context manager: leaving it quits the host.
    The host's standard error goes to a temporary file (a pipe nobody reads could fill and stop the host); it is
    quoted when the host dies.
    """

    def __init__(self, path, fs: int, *args, binary=None, env: dict | None = None):
        binary = binary or build_host(targets=("cli",))["cli"]
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([str(binary), str(path), str(fs), *map(str, args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.errors, text=True, env=env)

    def __enter__(self) -> "CommandLineHost":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.errors.close()

    def send(self, line: str) -> None:
        """Send a command without reading its answer (:meth:`read` takes it: a command that runs while the caller
        does something else)."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self) -> str:
        answer = self.proc.stdout.readline().strip()
        if not answer:
            raise AdacError(f"the hot-reload host ended (exit status {self.proc.wait()}): {self.stderr()}")
        return answer

    def ask(self, line: str) -> str:
        self.send(line)
        return self.read()

    def ok(self, line: str) -> None:
        answer = self.ask(line)
        if answer != "ok":
            raise AdacError(f"the hot-reload host answered {line!r} with {answer!r}: {self.status()}")

    def stderr(self) -> str:
        """What the host wrote to its standard error so far."""
        self.errors.seek(0)
        return self.errors.read()

    def status(self) -> dict:
        """The ``status`` answer: counts (reloads, compiles, updates, activations, failures, lifted, runtime) as ints,
        ``ms`` as a float, backend, tier and audition as strings, ``error``: the last error ("" if none)."""
        words, _, error = self.ask("status").partition("|")
        fields = dict(word.split("=", 1) for word in words.split()[1:])
        text = ("backend", "tier", "audition")
        return {**{k: int(v) for k, v in fields.items() if k not in ("ms", *text)},
                **{k: fields[k] for k in text if k in fields}, "ms": float(fields["ms"]), "error": error.strip()}

    def wait(self, reloads: int, timeout_ms: int = 120000) -> None:
        """Until ``reloads`` publishes are applied (compiles + updates); raises after ``timeout_ms``."""
        self.ok(f"wait {reloads} {timeout_ms}")

    def history(self) -> list[tuple[str, str, str, str]]:
        """The kept publishes, oldest first: ``(id, step, loss, "compile" | "update")``, "-" for a missing tag."""
        words = self.ask("history").split()
        if words[0] != "history" or int(words[1]) != len(words) - 2:
            raise AdacError(f"the hot-reload host's history is malformed: {words[:4]}")
        return [tuple(word.split(":")) for word in words[2:]]

    def impulse(self, n: int) -> np.ndarray:
        """The impulse responses, shape ``(n, n_out, n_in)`` (as ``render_impulse_responses``)."""
        words = self.ask(f"impulse {n}").split()
        if words[0] != "ir":
            raise AdacError(f"the hot-reload host answered impulse with {words[:4]}")
        n_in, n_out = int(words[1]), int(words[2])
        return np.array(words[3:], dtype=float).reshape(max(1, n_in), n, n_out).transpose(1, 2, 0)

    def record(self, n: int) -> np.ndarray:
        """The outputs of the next ``n`` samples of the host's input signal, shape ``(n, n_out)``."""
        words = self.ask(f"record {n}").split()
        if words[0] != "rec":
            raise AdacError(f"the hot-reload host answered record with {words[:4]}")
        return np.array(words[2:], dtype=float).reshape(n, int(words[1]))

    def activation(self) -> int:
        """Steady-clock (CLOCK_MONOTONIC) microseconds of the first block the newest DSP or values played."""
        return int(self.ask("activation").split()[1])

    def close(self, timeout: float = 60) -> int:
        """Quit; the host's exit status."""
        if self.proc.poll() is None:
            self.send("quit")
        return self.proc.wait(timeout=timeout)
