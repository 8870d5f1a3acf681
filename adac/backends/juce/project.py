"""JUCE plugin projects from FAUST code, built with CMake + Ninja.

``export_juce`` writes a self-contained JUCE CMake project: the model's DSP class in its own
translation unit (``FaustDsp.cpp``), the model-independent processor (``PluginProcessor.cpp``,
copied from ``juce_template/``), the FAUST headers it needs, and a ``CMakeLists.txt`` carrying
the plugin's identity. Every identity string is validated or sanitised before it reaches C++ or
CMake. Files whose content did not change are not rewritten (their mtime is kept), so Ninja
rebuilds only what a model change touches: ``FaustDsp.cpp``, then the links.

``build_plugin`` builds projects in a shared build tree: a generated superproject adds every
plugin built there as a subdirectory, next to one static library of the JUCE modules
(``adac_juce_modules``) that all of them link. JUCE is compiled once per tree, not once per plugin.

The model's class is the FAUST compiler's (``faust -lang cpp``, from the .dsp) or, given a ``NativeModel``
(IR, controls), the class of adac's native kernel (:mod:`adac.backends.native`): a drop-in ``dsp`` with the
same sliders, so the rest of the project is the same for both.

``install_bundles`` copies VST3 bundles to ``~/.vst3`` and LV2 bundles to ``~/.lv2`` (or under a prefix).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ...common import toolchain
from ...common.errors import AdacError, ToolchainError
from ...common.fileio import sha256_of, write_bytes_atomic
from ...common.resources import data_dir, data_file
from ...analysis.controls import rate_controls
from ...ir.fractional import DEFAULT_ORDER
from ...ir.rate import relower
from ..faust import rate_process
from ..faust.render import faust_to_cpp
from ..native import native_to_cpp

TEMPLATE_DIR = data_dir("juce_template")
# Debian's JUCE made real-time safe on the audio path; AdacJuceModules.cmake applies it to a copy of the modules
# (docs/realtime.md). Beside AdacJuceModules.cmake wherever that is written.
JUCE_PATCH = "patches/juce-7.0.5-realtime.patch"
ARCH = data_file("faust", "arch", "juce", "FaustDsp.cpp")
FORMATS = ("VST3", "LV2", "Standalone", "AU")
APPLE_ONLY_FORMATS = ("AU",)
LINUX_FORMATS = ("VST3", "LV2", "Standalone")
FAUST_CLASS = "AdacFaustDsp"
# FAUST headers the generated project compiles against (copied in: the project needs only JUCE)
FAUST_HEADERS = ("faust/export.h", "faust/dsp/dsp.h", "faust/gui/UI.h", "faust/gui/meta.h", "faust/gui/PathBuilder.h")
# faust options that would break the generated translation unit
_FORBIDDEN_FAUST_FLAGS = {"-a", "--architecture-file", "-o", "--output-file", "-lang", "--language", "-cn",
                          "--class-name", "-pn", "--process-name", "-O", "--output-dir", "-json", "--json", "-i",
                          "--inline-architecture-files"}
# every delay as a ring buffer indexed by one counter, one-sample states too: in bench/ the fastest FAUST
# option for FDNs (13 of 15 configurations, the others within 5 %), with bit-identical output; flags the
# caller gives come later and win
DEFAULT_FAUST_FLAGS = ("-mcd", "0")
_RESERVED_TARGETS = {"all", "clean", "help", "install", "test", "package", "edit_cache", "rebuild_cache"}
PROJECT_INFO = "adac_project.json"
SUPERPROJECT_DIR = "adac-superproject"


# ----------------------------------------------------------------------------------------- identity

def _ascii(text: str) -> str:
    """Letters with accents lose them (Réverb -> Reverb); other non-ASCII characters disappear."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).encode("ascii", "ignore").decode()


def display_string(text: str, limit: int = 63) -> str:
    """A display name safe inside C++ string literals, CMake quoted arguments, XML and Turtle.

    Kept: ASCII letters, digits, space and ``. _ ( ) + -``; anything else becomes ``_``
    (quotes, backslashes, ``;``, ``$``, ``@``, ``<>``, control characters...).
    """
    cleaned = re.sub(r"[^A-Za-z0-9 ._()+-]", "_", _ascii(str(text)))
    return re.sub(r"\s+", " ", cleaned).strip()[:limit].strip()


def target_name(name: str, limit: int = 40) -> str:
    """A C++/CMake identifier (also the bundle file name) from a plugin name: ``[A-Za-z][A-Za-z0-9_]*``."""
    ident = re.sub(r"[^A-Za-z0-9]+", "_", _ascii(str(name))).strip("_")
    if not ident or not ident[0].isalpha() or ident.lower() in _RESERVED_TARGETS or ident.lower().startswith(("juce", "adac_juce")):
        ident = "Adac_" + ident
    return ident[:limit].rstrip("_")


def _fail(field: str, value, rule: str):
    raise AdacError(f"JUCE identity: {field} {value!r} is invalid: {rule}")


def _check(value, pattern: str, field: str, rule: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        _fail(field, value, rule)
    return value


def validate_identity(*, name, manufacturer, manufacturer_code, plugin_code, version="0.1.0", formats=LINUX_FORMATS,
                      bundle_id=None, lv2_uri=None, display_name=None) -> dict:
    """Check and sanitise a plugin identity; returns the fields the templates use.

    Raises :class:`AdacError` naming the first invalid field.
    """
    if not isinstance(name, str) or not re.search(r"[A-Za-z0-9]", _ascii(name)):
        _fail("name", name, "needs at least one ASCII letter or digit")
    if not isinstance(manufacturer, str) or not re.search(r"[A-Za-z0-9]", _ascii(manufacturer)):
        _fail("manufacturer", manufacturer, "needs at least one ASCII letter or digit")
    if display_name is not None and (not isinstance(display_name, str) or not display_string(display_name)):
        _fail("display_name", display_name, "needs at least one ASCII letter or digit")
    _check(manufacturer_code, r"[A-Z][A-Za-z0-9]{3}", "manufacturer_code",
           "exactly 4 ASCII letters/digits, the first one upper case (JUCE; all-lower-case codes are Apple's)")
    _check(plugin_code, r"[A-Za-z0-9]{4}", "plugin_code", "exactly 4 ASCII letters/digits")
    match = re.fullmatch(r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})", version) \
        if isinstance(version, str) else None
    if not match or any(int(part) > 255 for part in match.groups()):
        _fail("version", version, "X.Y.Z with numbers 0..255 (JUCE packs them in one integer)")
    if isinstance(formats, str):
        formats = (formats,)
    try:
        formats = list(dict.fromkeys(formats))
    except TypeError:
        _fail("formats", formats, f"a list of {list(FORMATS)}")
    if not formats or any(f not in FORMATS for f in formats):
        _fail("formats", formats, f"a non-empty subset of {list(FORMATS)}")
    if "AU" in formats and sum(ch.isupper() for ch in plugin_code) != 1:
        _fail("plugin_code", plugin_code, "an AU plugin code needs exactly one upper-case letter")

    target = target_name(name)
    company = display_string(manufacturer)
    company_id = target_name(company).lower()
    bundle = bundle_id if bundle_id is not None else f"com.{company_id}.{target.lower()}".replace("_", "-")
    _check(bundle, r"[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9][A-Za-z0-9-]*)+", "bundle_id",
           "reverse-DNS of ASCII letters, digits and '-', e.g. com.example.reverb")
    # like JUCE's own default (<company website>/plugins/<name>), from the reverse-DNS bundle id
    domain = ".".join(reversed(bundle.split(".")[:-1])).lower()
    uri = lv2_uri if lv2_uri is not None else f"https://{domain}/plugins/{target.lower()}"
    _check(uri, r"[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9_~:/.?#%+-]+", "lv2_uri",
           "an absolute URI (https://... preferred by JUCE) of ASCII letters, digits and _~:/.?#%+-")
    if len(uri) > 512:
        _fail("lv2_uri", uri, "at most 512 characters")
    return {
        "TARGET": target,
        "DISPLAY_NAME": display_string(display_name if display_name is not None else name) or target,
        "MANUFACTURER": company,
        "BUNDLE_ID": bundle,
        "MANUFACTURER_CODE": manufacturer_code,
        "PLUGIN_CODE": plugin_code,
        "VERSION": version,
        "LV2_URI": uri,
        "FORMATS": [f for f in formats if f not in APPLE_ONLY_FORMATS],
        "APPLE_FORMATS": [f for f in formats if f in APPLE_ONLY_FORMATS],
    }


def plugin_faust_flags(faust_flags) -> tuple[str, ...]:
    """The ``faust`` argument words: the defaults, then the caller's; an item may hold an option and its
    value (``"-mcd 0"``, as a manifest writes it), which are two words to ``faust``."""
    if isinstance(faust_flags, str) or not all(isinstance(f, str) for f in faust_flags):
        raise AdacError(f"faust_flags {faust_flags!r} must be a list of strings, e.g. ['-double']")
    words = tuple(word for flag in faust_flags for word in flag.split())
    bad = [f for f in words if f in _FORBIDDEN_FAUST_FLAGS]
    if bad:
        raise AdacError(f"faust_flags: {bad} cannot be used, adac sets the language, class, architecture and output")
    return DEFAULT_FAUST_FLAGS + words


# ------------------------------------------------------------------------------------------- export

def write_if_changed(path, data: str | bytes) -> bool:
    """Write atomically unless the file already holds ``data``; returns True if it wrote.

    An unchanged file keeps its mtime, so incremental builds stay incremental.
    """
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.is_file() and path.read_bytes() == blob:
            return False
    except OSError:
        pass
    write_bytes_atomic(path, blob)
    return True


def _faust_include_dir() -> Path:
    """Where the FAUST headers are: $ADAC_FAUST_INCLUDE, else ``faust --includedir``."""
    override = os.environ.get("ADAC_FAUST_INCLUDE")
    if override:
        if not (Path(override) / "faust" / "dsp" / "dsp.h").is_file():
            raise ToolchainError(f"ADAC_FAUST_INCLUDE={override}: no faust/dsp/dsp.h there")
        return Path(override)
    proc = toolchain.run([toolchain.faust(), "--includedir"], "faust --includedir")
    found = Path(proc.stdout.decode().strip())
    if not (found / "faust" / "dsp" / "dsp.h").is_file():
        raise ToolchainError(f"FAUST headers not found in {found} (set ADAC_FAUST_INCLUDE to the directory holding faust/dsp/dsp.h)")
    return found


def _fill(template: str, fields: dict) -> str:
    for key, value in fields.items():
        template = template.replace(f"@{key}@", " ".join(value) if isinstance(value, list) else value)
    leftover = re.search(r"@[A-Z_]+@", template)
    if leftover:
        raise AdacError(f"{TEMPLATE_DIR}: template placeholder {leftover.group(0)} has no value")
    return template


SAMPLE_RATE_MODES = ("relowered", "resample")
# headers the FAUST classes include, included once before their namespaces (their guards then keep them out)
_DSP_PRELUDE = """// Generated by adac (adac.backends.juce.export_juce): the model's FAUST classes, one namespace per class.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <memory>

#include "faust/gui/meta.h"
#include "faust/gui/UI.h"
#include "faust/dsp/dsp.h"

#include "FaustDsp.h"
"""
# a library header a class includes (#include <...>): one the prelude lacks goes before the namespaces too
_SYSTEM_INCLUDE = re.compile(r"^#include <[^>\n]+>$", re.M)
# the include guards of a class (FAUST's __AdacFaustDsp_H__, and the native kernel's FAUST class inside it)
_GUARD = re.compile(r"^#define\s+(__\w+_H__)\s*$", re.M)


def _namespace(rate: int) -> str:
    """The C++ namespace of the FAUST class serving ``rate`` Hz (0: every rate)."""
    return f"adac_rate_{rate}" if rate else "adac_any_rate"


@dataclass(frozen=True)
class NativeModel:
    """A model the JUCE project realises with adac's native kernel (:func:`adac.backends.native.native_to_cpp`)
    instead of FAUST: the IR (at its own rate), its macro-controls, and the code-generation options the .dsp was
    emitted with (``fractional_order``, ``delay_limits``: as for :func:`adac.backends.faust.json_to_faust`)."""

    ir: dict
    controls: dict | None = None
    fractional_order: int = DEFAULT_ORDER
    delay_limits: dict | None = None


def _model_class(model: str | NativeModel, flags: tuple[str, ...], rate: int, lowered: bool) -> str:
    """The class ``AdacFaustDsp`` serving ``rate`` Hz (``lowered``: the model lowered again for it), in the
    architecture :data:`ARCH`: FAUST's from the .dsp text ``model`` (``adac_process_<rate>`` when lowered), or
    the native kernel's from a :class:`NativeModel` (its IR relowered, :func:`adac.ir.rate.relower`)."""
    if isinstance(model, str):
        program = ("-pn", rate_process(rate)) if lowered else ()
        return faust_to_cpp(model, architecture=ARCH, class_name=FAUST_CLASS, extra_flags=flags + program)
    ir, controls = model.ir, model.controls
    if lowered:
        ir, controls = relower(model.ir, rate), rate_controls(model.controls, model.ir, model.fractional_order)
    return native_to_cpp(ir, controls, architecture=ARCH, class_name=FAUST_CLASS, double="-double" in flags,
                         faust_flags=flags, fractional_order=model.fractional_order, delay_limits=model.delay_limits)


def _native_cmake(target: str) -> str:
    """What a project of the native kernel adds to the template's ``CMakeLists.txt``: Eigen's headers
    (:func:`adac.common.toolchain.eigen_include`, header-only), which its classes include."""
    return ("\n# adac's native kernel (manifest backend: native): its classes include Eigen's headers\n"
            f"target_include_directories({target} SYSTEM PRIVATE {_cmake_quote(toolchain.eigen_include())})\n")


def _rate_classes(model: str | NativeModel, flags: tuple[str, ...], sample_rate: dict | None) -> str:
    """``FaustDsp.cpp``: one model class per rate it serves, each in namespace ``adac_rate_<rate>``, the table
    ``adacSampleRates`` and the factory ``adacCreateFaustDsp(rate)`` (see juce_template/FaustDsp.h).

    ``model``: the .dsp text, or a :class:`NativeModel`. ``sample_rate``: ``{"mode": "relowered" | "resample",
    "rates": [Hz, ...], "fs": the model's rate}``; relowered: the class of rate r is the model lowered for r
    (the .dsp's ``adac_process_<r>``, ``process`` at fs); resample: the model's class only. None: the model's
    class at every rate (its delays stay in samples)."""
    if sample_rate is None:
        mode, fs, rates = "any", 0, []
    else:
        mode, fs = sample_rate["mode"], int(sample_rate["fs"])
        rates = sorted({int(r) for r in sample_rate["rates"]} | {fs})  # the model's own rate is always accepted
        if mode not in SAMPLE_RATE_MODES:
            raise AdacError(f"sample_rate.mode: {mode!r} is not one of {', '.join(SAMPLE_RATE_MODES)}")
    served = rates if mode == "relowered" else [fs]
    classes = {rate: _model_class(model, flags, rate, lowered=mode == "relowered" and rate != fs) for rate in served}
    # e.g. the native kernel's Eigen, whose templates cannot be declared inside a namespace
    extra = [h for h in dict.fromkeys(h for cpp in classes.values() for h in _SYSTEM_INCLUDE.findall(cpp))
             if h not in _DSP_PRELUDE]
    parts = [_DSP_PRELUDE + "".join(f"{header}\n" for header in extra)]
    for rate, cpp in classes.items():  # each class's include guards (__AdacFaustDsp_H__, ...) undone for the next
        parts += [f"namespace {_namespace(rate)} {{", cpp, "}", *(f"#undef {g}" for g in _GUARD.findall(cpp)), ""]
    listed = ", ".join(str(r) for r in rates) or "0"
    cases = "".join(f"    case {r}: return {_namespace(r)}::adacCreateFaustDsp();\n" for r in served)
    pick = "sampleRate" if mode == "relowered" else str(fs)
    parts.append(f"static const int adacRates[] = {{{listed}}};\n"
                 f"const AdacSampleRates adacSampleRates = {{AdacSampleRates::Mode::{mode}, {fs}, adacRates, {len(rates)}}};\n\n"
                 "std::unique_ptr<dsp> adacCreateFaustDsp(int sampleRate)\n{\n"
                 + ("    (void) sampleRate;\n    return adac_any_rate::adacCreateFaustDsp();\n" if mode == "any" else
                    f"    switch ({pick}) {{\n{cases}    default: return nullptr;\n    }}\n")
                 + "}\n")
    return "\n".join(parts)


def export_juce(model: str | NativeModel, out_dir, *, name: str, manufacturer: str, manufacturer_code: str, plugin_code: str,
                version: str = "0.1.0", formats=LINUX_FORMATS, bundle_id: str | None = None,
                lv2_uri: str | None = None, faust_flags=(), display_name: str | None = None,
                sample_rate: dict | None = None) -> Path:
    """Write a complete JUCE CMake project for ``model`` into ``out_dir``: the FAUST program (the .dsp's text),
    or a :class:`NativeModel` realised by adac's native kernel (its classes take the same controls and flags).

    ``name`` becomes the CMake target / bundle name (sanitised to an identifier) and, unless
    ``display_name`` is given, the name hosts show. ``formats`` may hold VST3, LV2, Standalone and
    AU (AU is built on macOS only). ``faust_flags`` are extra ``faust`` options (e.g. ``-double``), given
    after :data:`DEFAULT_FAUST_FLAGS` (so ``-mcd 16`` overrides the default ``-mcd 0``). ``sample_rate``: how
    the plugin follows the host's rate, ``{"mode": "relowered" | "resample", "rates": [...], "fs": ...}``
    (docs/sample_rate.md; the manifest's ``sample_rate``), None: the model's code at every rate.
    Raises :class:`AdacError` naming the field for an invalid identity,
    :class:`~adac.errors.ToolchainError` if FAUST refuses the code, and
    :class:`~adac.backends.native.NativeUnsupported` if the kernel cannot realise a :class:`NativeModel`;
    nothing is written then. The project info (:data:`PROJECT_INFO`) records ``backend``: faust or native.
    Returns the project directory.
    """
    if not isinstance(model, NativeModel) and (not isinstance(model, str) or not model.strip()):
        raise AdacError("export_juce: the model is empty (expected FAUST source text or a NativeModel)")
    fields = validate_identity(name=name, manufacturer=manufacturer, manufacturer_code=manufacturer_code,
                               plugin_code=plugin_code, version=version, formats=formats, bundle_id=bundle_id,
                               lv2_uri=lv2_uri, display_name=display_name)
    flags = plugin_faust_flags(faust_flags)

    # everything that can fail runs before the first write
    cpp = _rate_classes(model, flags, sample_rate)
    include_dir = _faust_include_dir()
    files: dict[str, str | bytes] = {
        "FaustDsp.cpp": cpp,
        "FaustDsp.h": (TEMPLATE_DIR / "FaustDsp.h").read_text(),
        "PluginProcessor.cpp": (TEMPLATE_DIR / "PluginProcessor.cpp").read_text(),
        "cmake/AdacJuceModules.cmake": (TEMPLATE_DIR / "AdacJuceModules.cmake").read_text(),
        f"cmake/{JUCE_PATCH}": (TEMPLATE_DIR / JUCE_PATCH).read_bytes(),  # bytes: its hunks keep JUCE's CRLF lines
        "CMakeLists.txt": _fill((TEMPLATE_DIR / "CMakeLists.txt.in").read_text(), fields)
                          + (_native_cmake(fields["TARGET"]) if isinstance(model, NativeModel) else ""),
        # the identity for C++ readers (not compiled in: JUCE passes it as JucePlugin_* macros)
        "PluginConfig.h": "#pragma once\n// Generated by adac: the plugin's identity (JUCE defines JucePlugin_* from CMakeLists.txt).\n"
                          + "".join(f'#define ADAC_{k} "{" ".join(v) if isinstance(v, list) else v}"\n'
                                    for k, v in fields.items()),
        PROJECT_INFO: json.dumps({"generator": "adac.backends.juce.export_juce", "target": fields["TARGET"],
                                  "formats": fields["FORMATS"], "apple_formats": fields["APPLE_FORMATS"],
                                  "identity": {k.lower(): v for k, v in fields.items()
                                               if k not in ("FORMATS", "APPLE_FORMATS")},
                                  "faust_flags": list(flags), "sample_rate": sample_rate,
                                  "backend": "native" if isinstance(model, NativeModel) else "faust"},
                                 indent=1) + "\n",
    }
    for header in FAUST_HEADERS:
        files[f"faust_include/{header}"] = (include_dir / header).read_bytes()
    listed = json.loads((TEMPLATE_DIR / "project_files.json").read_text())["files"]
    if sorted(files) != sorted(listed):  # the SCons tool declares the listed files as the JUCE step's targets
        raise AdacError(f"{TEMPLATE_DIR / 'project_files.json'}: lists {sorted(listed)}, the export writes {sorted(files)}")

    out = Path(out_dir)
    for relative, data in files.items():
        write_if_changed(out / relative, data)
    return out


# -------------------------------------------------------------------------------------------- build

def _project_info(project_dir: Path) -> dict:
    info_path = project_dir / PROJECT_INFO
    cmake_path = project_dir / "CMakeLists.txt"
    if info_path.is_file():
        try:
            return json.loads(info_path.read_text())
        except json.JSONDecodeError as exc:
            raise AdacError(f"{info_path}: not valid JSON ({exc}); re-export the project") from exc
    if not cmake_path.is_file():
        raise AdacError(f"{project_dir}: no CMakeLists.txt (export the project with adac.juce.export_juce first)")
    match = re.search(r"^project\((\w+)", cmake_path.read_text(), re.M)
    if not match:
        raise AdacError(f"{cmake_path}: no project() line")
    return {"target": match.group(1), "formats": list(LINUX_FORMATS)}


@contextlib.contextmanager
def _locked(build_dir: Path):
    """One build at a time per build tree (CMake and Ninja are not safe to run twice in one tree)."""
    import fcntl

    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".adac-build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cmake_quote(path: Path) -> str:
    text = path.as_posix()
    if re.search(r'["\\$;\n]', text):
        raise AdacError(f"{text}: a path with quotes, backslashes, '$' or ';' cannot be used in a CMake build")
    return f'"{text}"'


def _update_superproject(build_dir: Path, target: str, project_dir: Path) -> bool:
    """Register ``project_dir`` in the build tree's superproject; returns True if it changed."""
    super_dir = build_dir / SUPERPROJECT_DIR
    registry_path = super_dir / "plugins.json"
    registry: dict[str, str] = {}
    if registry_path.is_file():
        try:
            registry = json.loads(registry_path.read_text())
        except json.JSONDecodeError:
            registry = {}
    # forget projects that were deleted since (their subdirectory would break the configure)
    registry = {t: p for t, p in registry.items() if (Path(p) / "CMakeLists.txt").is_file()}
    known = registry.get(target)
    if known is not None and Path(known) != project_dir:
        raise AdacError(f"{build_dir}: the build tree already holds a plugin named {target} from {known}; "
                        f"use another name for {project_dir} or another build directory")
    registry[target] = str(project_dir)
    lines = ["# Generated by adac.juce.build_plugin: the plugin projects of this build tree.\n"]
    for name in sorted(registry):
        lines.append(f"add_subdirectory({_cmake_quote(Path(registry[name]))} "
                     f"{_cmake_quote(build_dir / 'plugins' / name)})\n")
    changed = False
    changed |= write_if_changed(super_dir / "CMakeLists.txt", (TEMPLATE_DIR / "Superproject.cmake").read_text())
    changed |= write_if_changed(super_dir / "AdacJuceModules.cmake", (TEMPLATE_DIR / "AdacJuceModules.cmake").read_text())
    changed |= write_if_changed(super_dir / JUCE_PATCH, (TEMPLATE_DIR / JUCE_PATCH).read_bytes())
    changed |= write_if_changed(super_dir / "plugins.cmake", "".join(lines))
    write_if_changed(registry_path, json.dumps(registry, indent=1, sort_keys=True) + "\n")
    return changed


def _cache_value(cache: Path, key: str) -> str | None:
    match = re.search(rf"^{re.escape(key)}:[A-Z]+=(.*)$", cache.read_text(errors="replace"), re.M)
    return match.group(1) if match else None


def _artefacts(plugin_build: Path, target: str, config: str, formats) -> dict[str, Path]:
    base = plugin_build / f"{target}_artefacts" / config
    where = {
        "VST3": base / "VST3" / f"{target}.vst3",
        "LV2": base / "LV2" / f"{target}.lv2",
        "Standalone": base / "Standalone" / (f"{target}.app" if sys.platform == "darwin" else target),
        "AU": base / "AU" / f"{target}.component",
    }
    return {fmt: where[fmt] for fmt in formats if fmt in where}


def build_plugin(project_dir, build_dir, *, config: str = "Release", jobs: int = 2, cmake: str = "cmake",
                 generator: str = "Ninja") -> dict[str, Path]:
    """Configure (once) and build a project written by :func:`export_juce`; returns format -> bundle path.

    ``build_dir`` is a shared build tree: every project built into it becomes a subdirectory of a
    generated superproject and links the same static library of JUCE modules, compiled once.
    CMake runs only when the tree is new, a project joins it, or ``config`` changes; otherwise
    Ninja alone rebuilds what changed (after a new model: ``FaustDsp.cpp`` and the links).
    """
    project_dir, build_dir = Path(project_dir).resolve(), Path(build_dir).resolve()
    info = _project_info(project_dir)
    target = info["target"]
    formats = list(info.get("formats", LINUX_FORMATS)) + (list(info.get("apple_formats", [])) if sys.platform == "darwin" else [])
    if not formats:
        raise AdacError(f"{project_dir}: the project has no plugin format for this platform ({sys.platform})")
    cmake_exe = shutil.which(os.environ.get("ADAC_CMAKE", cmake) if cmake == "cmake" else cmake)
    if not cmake_exe:
        raise ToolchainError(f"{cmake!r} not found on PATH (install cmake, or set ADAC_CMAKE)")
    make_program = []
    if generator == "Ninja":
        ninja = shutil.which(os.environ.get("ADAC_NINJA", "ninja"))
        if not ninja:
            raise ToolchainError("ninja not found on PATH (install ninja-build, set ADAC_NINJA, or pass "
                                 "generator='Unix Makefiles')")
        make_program = [f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    if not isinstance(jobs, int) or jobs < 1:
        raise AdacError(f"build_plugin: jobs must be a positive integer, not {jobs!r}")

    with _locked(build_dir):
        changed = _update_superproject(build_dir, target, project_dir)
        cache = build_dir / "CMakeCache.txt"
        configured = cache.is_file()
        home = _cache_value(cache, "CMAKE_HOME_DIRECTORY") if configured else None
        if home is not None and Path(home).resolve() != (build_dir / SUPERPROJECT_DIR).resolve():
            # a tree configured for another source (e.g. one project on its own): start its CMake state afresh
            cache.unlink()
            shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)
            configured = changed = False
        multi_config = generator.startswith(("Visual Studio", "Xcode")) or "Multi-Config" in generator
        if configured:
            cached_generator = _cache_value(cache, "CMAKE_GENERATOR")
            if cached_generator and cached_generator != generator:
                raise AdacError(f"{build_dir}: configured with the {cached_generator} generator, not {generator}; "
                                "use another build directory")
        if not configured or changed or (not multi_config and _cache_value(cache, "CMAKE_BUILD_TYPE") != config):
            command = [cmake_exe, "-S", str(build_dir / SUPERPROJECT_DIR), "-B", str(build_dir), "-G", generator,
                       f"-DCMAKE_BUILD_TYPE={config}", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *make_program]
            launcher = shutil.which("ccache")
            if launcher and not configured:
                command += [f"-DCMAKE_C_COMPILER_LAUNCHER={launcher}", f"-DCMAKE_CXX_COMPILER_LAUNCHER={launcher}"]
            toolchain.run(command, f"CMake configure of the JUCE build tree {build_dir}")
        toolchain.run_with_progress([cmake_exe, "--build", str(build_dir), "--config", config, "--target", f"{target}_All",
                                     "--parallel", str(jobs)], f"JUCE build of {target}")
        built = _artefacts(build_dir / "plugins" / target, target, config, formats)
        missing = [fmt for fmt, path in built.items() if not path.exists()]
        if missing:
            raise AdacError(f"{build_dir}: the JUCE build of {target} produced no {', '.join(missing)} bundle")
    return built


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def strip_binaries(bundle: Path) -> list[Path]:
    """Remove symbols from every ELF file of a bundle folder (or from one executable); returns them.
    The program: ``$ADAC_STRIP``, else ``strip``."""
    strip = toolchain.tool("strip", "ADAC_STRIP")
    bundle = Path(bundle)
    files = [bundle] if bundle.is_file() else sorted(p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    stripped = [f for f in files if _is_elf(f)]
    for binary in stripped:
        toolchain.run([strip, "--strip-unneeded", str(binary)], f"strip {binary}")
    return stripped


# ------------------------------------------------------------------------------------------ install

def _replace_tree(src: Path, target: Path) -> None:
    """Copy ``src`` (file or bundle directory) to ``target``, swapping the old copy out at the end."""
    tmp = target.parent / f".{target.name}.adac-tmp"
    old = target.parent / f".{target.name}.adac-old"
    for leftover in (tmp, old):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        elif leftover.exists() or leftover.is_symlink():
            leftover.unlink()
    if src.is_dir():
        shutil.copytree(src, tmp, symlinks=True)
    else:
        shutil.copy2(src, tmp)
    if target.exists() or target.is_symlink():
        os.replace(target, old)
    os.replace(tmp, target)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    elif old.exists() or old.is_symlink():
        old.unlink()


def copy_bundles(built: dict, dest) -> dict[str, dict]:
    """Copy bundles into ``dest`` (replacing old copies); returns format -> {path, sha256}."""
    dest = Path(dest)
    listing = {}
    dest.mkdir(parents=True, exist_ok=True)
    for fmt, src in built.items():
        src = Path(src["path"] if isinstance(src, dict) else src)
        target = dest / src.name
        _replace_tree(src, target)
        listing[fmt] = {"path": str(target), "sha256": sha256_of(target)}
    return listing


_INSTALL_SUFFIX = {"VST3": ".vst3", "LV2": ".lv2", "AU": ".component", "Standalone": None}


def install_bundles(built: dict, prefix=None) -> dict[str, Path]:
    """Install built bundles: VST3 -> ``~/.vst3``, LV2 -> ``~/.lv2``, Standalone -> ``~/.local/bin``
    (macOS AU -> ``~/Library/Audio/Plug-Ins/Components``), or the same folders under ``prefix``.

    ``built`` maps format -> bundle path (as :func:`build_plugin` returns) or -> ``{"path": ...}``
    (as :func:`copy_bundles` lists). A bundle whose name would land outside its target folder,
    or that is not what its format says, is refused with :class:`AdacError`. Returns format -> installed path.
    """
    root = Path(prefix).expanduser().resolve() if prefix is not None else Path.home()
    homes = {"VST3": root / ".vst3", "LV2": root / ".lv2", "Standalone": root / ".local" / "bin",
             "AU": root / "Library" / "Audio" / "Plug-Ins" / "Components"}
    plan = []
    for fmt, entry in built.items():
        if fmt not in homes:
            raise AdacError(f"install: unknown plugin format {fmt!r} (known: {sorted(homes)})")
        src = Path(entry["path"] if isinstance(entry, dict) else entry)
        if not src.exists():
            raise AdacError(f"install: {fmt} bundle {src} does not exist (build it first)")
        suffix = _INSTALL_SUFFIX[fmt]
        if suffix and (src.suffix != suffix or not src.is_dir()):
            raise AdacError(f"install: {src} is not a {fmt} bundle (a {suffix} folder)")
        if fmt == "Standalone" and not src.is_file():
            raise AdacError(f"install: {src} is not a Standalone executable")
        dest_dir = homes[fmt]
        if src.name in ("", ".", "..") or "/" in src.name or src.name.startswith("."):
            raise AdacError(f"install: refusing bundle name {src.name!r}")
        dest = dest_dir / src.name
        if dest.is_symlink():
            raise AdacError(f"install: {dest} is a symbolic link; remove it first (adac does not follow it)")
        # the folder itself may be a symlink (e.g. ~/.vst3 -> elsewhere): compare resolved paths
        if dest.resolve().parent != dest_dir.resolve():
            raise AdacError(f"install: refusing to write {dest} outside {dest_dir}")
        plan.append((fmt, src, dest_dir, dest))
    installed = {}
    for fmt, src, dest_dir, dest in plan:
        dest_dir.mkdir(parents=True, exist_ok=True)
        _replace_tree(src, dest)
        installed[fmt] = dest
    return installed
