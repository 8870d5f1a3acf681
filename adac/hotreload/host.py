"""The hot-reload hosts (``hosts/hotreload``): a command-line host and a JUCE plugin, built with CMake + Ninja."""
from __future__ import annotations

import os
from pathlib import Path

from ..common import toolchain
from ..common.errors import AdacError
from ..common.resources import data_dir


TARGETS = {"cli": "adac-hotreload-render", "plugin": "AdacHotReload_All"}


def build_host(build_dir=None, *, targets=("cli", "plugin"), jobs: int = 2) -> dict[str, Path]:
    """Build the hot-reload hosts with CMake + Ninja into ``build_dir`` (default ``build/hotreload`` under the
    working folder).

    ``targets``: any of "cli" (``adac-hotreload-render``) and "plugin" (the JUCE VST3 + Standalone).
    Returns ``{"cli": path}`` and/or ``{"vst3": path, "standalone": path}``.
    """
    targets = tuple(targets)
    unknown = set(targets) - set(TARGETS)
    if unknown or not targets:
        raise AdacError(f"build_host: targets must be among {sorted(TARGETS)}, got {list(targets)}")
    build_dir = Path(build_dir or Path("build") / "hotreload").resolve()
    cmake = os.environ.get("ADAC_CMAKE", "cmake")
    plugin = "ON" if "plugin" in targets else "OFF"
    cache = build_dir / "CMakeCache.txt"
    if not cache.exists():
        toolchain.run([cmake, "-S", str(data_dir("hosts") / "hotreload"), "-B", str(build_dir), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                       f"-DADAC_HOTRELOAD_PLUGIN={plugin}"], "CMake configure of the hot-reload host")
    elif plugin == "ON" and "ADAC_HOTRELOAD_PLUGIN:BOOL=ON" not in cache.read_text():
        toolchain.run([cmake, "-DADAC_HOTRELOAD_PLUGIN=ON", str(build_dir)], "CMake reconfigure of the hot-reload host")
    toolchain.run([cmake, "--build", str(build_dir), "--parallel", str(jobs), "--target", *(TARGETS[t] for t in targets)],
                  "hot-reload host build")
    built = {}
    if "cli" in targets:
        built["cli"] = build_dir / "adac-hotreload-render"
    if "plugin" in targets:
        artefacts = build_dir / "AdacHotReload_artefacts" / "Release"
        built["vst3"] = artefacts / "VST3" / "AdacHotReload.vst3"
        built["standalone"] = artefacts / "Standalone" / "AdacHotReload"
    missing = [str(p) for p in built.values() if not p.exists()]
    if missing:
        raise AdacError(f"hot-reload host build produced no {', '.join(missing)}")
    return built
