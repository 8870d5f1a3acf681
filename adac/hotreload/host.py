"""The hot-reload hosts (``hosts/hotreload``): a command-line host and a JUCE plugin, built with CMake + Ninja."""
from __future__ import annotations

import os
from pathlib import Path

from ..common import toolchain
from ..common.errors import AdacError
from ..backends.juce import build_plugin
from ..common.resources import data_dir


TARGETS = ("cli", "plugin")
HOST_DIR_NAME = "hotreload"


def build_host(build_dir=None, *, targets=TARGETS, jobs: int = 2, juce_build=None) -> dict[str, Path]:
    """Build the hot-reload hosts with CMake + Ninja.

    ``targets``: any of "cli" (``adac-hotreload-render``, no JUCE: built in ``build_dir``, default
    ``build/hotreload`` under the working folder) and "plugin" (the JUCE VST3 + Standalone: built as one
    more project of the shared JUCE build tree ``juce_build``, default ``build/juce-build``, where it links
    the JUCE modules library every adac plugin of that tree links; JUCE is not compiled again).
    Returns ``{"cli": path}`` and/or ``{"vst3": path, "standalone": path}``.
    """
    targets = tuple(targets)
    unknown = set(targets) - set(TARGETS)
    if unknown or not targets:
        raise AdacError(f"build_host: targets must be among {list(TARGETS)}, got {list(targets)}")
    source = data_dir("hosts") / HOST_DIR_NAME
    built = {}
    if "cli" in targets:
        build_dir = Path(build_dir or Path("build") / "hotreload").resolve()
        cmake = os.environ.get("ADAC_CMAKE", "cmake")
        if not (build_dir / "CMakeCache.txt").exists():
            toolchain.run([cmake, "-S", str(source), "-B", str(build_dir), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                           "-DADAC_HOTRELOAD_PLUGIN=OFF"], "CMake configure of the hot-reload host")
        toolchain.run([cmake, "--build", str(build_dir), "--parallel", str(jobs), "--target", "adac-hotreload-render"],
                      "hot-reload host build")
        built["cli"] = build_dir / "adac-hotreload-render"
        if not built["cli"].exists():
            raise AdacError(f"hot-reload host build produced no {built['cli']}")
    if "plugin" in targets:
        bundles = build_plugin(source, Path(juce_build or Path("build") / "juce-build"), jobs=jobs)
        built["vst3"], built["standalone"] = bundles["VST3"], bundles["Standalone"]
    return built
