"""``adac doctor``: the tools adac's steps use, their versions, and how to install what is missing.

    adac doctor [--json]

Checked: the FAUST compiler (``.dsp`` -> C++; every build), libfaust (the hot-reload host), JUCE's CMake
package (plugins), cmake and ninja (the plugin build), a C++ compiler (renders, plugins), SCons (the
build), and the Python packages torch and FLAMO (the IR step). A missing tool is listed with the line
that installs it (Debian/Ubuntu ``apt-get``, macOS Homebrew, or ``pip``) and what needs it. The exit
status is 0 when everything is found, 1 otherwise.
"""
from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass


@dataclass
class Check:
    name: str
    needed_for: str
    found: bool
    version: str = ""
    where: str = ""
    install: str = ""  # how to install it (shown when missing)


def _first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0].strip() if text else ""


def _version_in(text: str) -> str:
    match = re.search(r"\d+\.\d+(?:\.\d+)*", text)
    return match.group(0) if match else text


def _install(apt: str = "", brew: str = "", pip: str = "", other: str = "") -> str:
    if pip:
        return f"{sys.executable} -m pip install {pip}"
    if sys.platform == "darwin" and brew:
        return f"brew install {brew}"
    if apt:
        return f"apt-get install {apt}" if getattr(os, "geteuid", lambda: 1)() == 0 else f"sudo apt-get install {apt}"
    return other


def _program(name: str, candidates: list[str], env_var: str | None, needed_for: str, version_args: list[str],
             install: str) -> Check:
    names = [os.environ[env_var]] if env_var and os.environ.get(env_var) else candidates
    for candidate in names:
        path = shutil.which(candidate)
        if path:
            return Check(name, needed_for, True, _version_in(_first_line([path, *version_args])), path)
    return Check(name, needed_for, False, install=install)


def _library_dirs() -> list[str]:
    dirs = [d for var in ("LIBRARY_PATH", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")
            for d in os.environ.get(var, "").split(os.pathsep) if d]
    dirs += ["/usr/local/lib", "/usr/lib", "/opt/homebrew/lib", "/usr/lib64"]
    dirs += sorted(glob.glob("/usr/lib/*-linux-gnu"))
    return dirs


def libfaust() -> Check:
    for folder in _library_dirs():
        for pattern in ("libfaust.so*", "libfaust*.dylib", "faust.dll"):
            hits = sorted(glob.glob(os.path.join(folder, pattern)))
            if hits:
                real = os.path.realpath(hits[0])
                return Check("libfaust", "the hot-reload host (scons hotreload)", True,
                             _version_in(os.path.basename(real).partition(".so.")[2] or os.path.basename(real)), real)
    return Check("libfaust", "the hot-reload host (scons hotreload)", False,
                 install=_install(apt="libfaust2", brew="faust"))


def _cmake_prefixes() -> list[str]:
    prefixes = [p for var in ("JUCE_DIR", "CMAKE_PREFIX_PATH") for p in os.environ.get(var, "").split(os.pathsep) if p]
    return prefixes + ["/usr/local", "/usr", "/opt/homebrew", "/opt/local"]


def juce() -> Check:
    for prefix in _cmake_prefixes():
        patterns = [os.path.join(prefix, "JUCEConfig.cmake"),
                    os.path.join(prefix, "lib", "cmake", "JUCE-*", "JUCEConfig.cmake"),
                    os.path.join(prefix, "lib", "*", "cmake", "JUCE-*", "JUCEConfig.cmake"),
                    os.path.join(prefix, "share", "cmake", "JUCE-*", "JUCEConfig.cmake")]
        for pattern in patterns:
            hits = sorted(glob.glob(pattern))
            if hits:
                folder = os.path.dirname(hits[-1])
                version = os.path.basename(folder).partition("-")[2]
                return Check("JUCE", "plugins (the JUCE CMake package, find_package(JUCE))", True,
                             version or "found", folder)
    return Check("JUCE", "plugins (the JUCE CMake package, find_package(JUCE))", False,
                 install=_install(apt="juce-modules-source juce-tools",
                                  other="build JUCE with CMake and install it, then set JUCE_DIR to its cmake folder"))


def _python_package(name: str, distribution: str, needed_for: str, pip: str) -> Check:
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return Check(name, needed_for, False, install=_install(pip=pip))
    return Check(name, needed_for, True, version, sys.executable)


def scons() -> Check:
    try:
        import SCons  # noqa: F401  (the build runs scons under this Python: the tool imports adac)

        version = getattr(SCons, "__version__", "") or importlib.metadata.version("scons")
        return Check("SCons", "the build (scons)", True, version, os.path.dirname(SCons.__file__))
    except (ImportError, importlib.metadata.PackageNotFoundError):
        return Check("SCons", "the build (scons)", False, install=_install(pip="scons"))


def checks() -> list[Check]:
    cxx_names = ["g++", "c++", "clang++"] if sys.platform != "win32" else ["cl", "clang++", "g++"]
    return [
        _program("faust", ["faust"], "ADAC_FAUST", "every build (.dsp -> C++), renders, verify",
                 ["--version"], _install(apt="faust", brew="faust")),
        libfaust(),
        juce(),
        _program("cmake", ["cmake"], "ADAC_CMAKE", "plugins", ["--version"],
                 _install(apt="cmake", brew="cmake", other=f"{sys.executable} -m pip install cmake")),
        _program("ninja", ["ninja", "ninja-build"], "ADAC_NINJA", "plugins", ["--version"],
                 _install(apt="ninja-build", brew="ninja", other=f"{sys.executable} -m pip install ninja")),
        _program("C++ compiler", cxx_names, "CXX", "renders (verify, render), plugins", ["--version"],
                 _install(apt="g++", other="xcode-select --install" if sys.platform == "darwin" else "")),
        scons(),
        _python_package("torch", "torch", "the IR step (FLAMO models)", "torch"),
        _python_package("FLAMO", "flamo", "the IR step (FLAMO models)", "flamo"),
    ]


def report(found: list[Check]) -> str:
    width = max(len(c.name) for c in found)
    lines = [f"adac doctor ({platform.system()} {platform.machine()}, Python {platform.python_version()})"]
    for c in found:
        if c.found:
            lines.append(f"  ok       {c.name:<{width}}  {c.version:<10}  {c.where}")
        else:
            lines.append(f"  MISSING  {c.name:<{width}}  needed for {c.needed_for}")
            if c.install:
                lines.append(f"           {'':<{width}}  install: {c.install}")
    missing = [c.name for c in found if not c.found]
    lines.append("everything adac uses is there" if not missing else f"missing: {', '.join(missing)}")
    return "\n".join(lines)


def main(as_json: bool = False) -> int:
    found = checks()
    if as_json:
        print(json.dumps([asdict(c) for c in found], indent=1))
    else:
        print(report(found))
    return 0 if all(c.found for c in found) else 1
