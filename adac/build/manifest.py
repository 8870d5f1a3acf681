"""Plugin manifests: ``plugins/<Name>/plugin.yaml``, validated by ``schemas/manifest.schema.json``.

``load_manifest(path) -> Manifest`` reads the file with ``yaml.safe_load``, validates it
(JSON Schema draft 2020-12, unknown fields are errors), checks what a schema cannot say
(control ranges ``min <= default <= max``, the output folder stays in the build tree) and
resolves paths against the manifest's folder. Every error is a :class:`SchemaError` that
names the file, the line PyYAML gives for the field, and the field's JSON pointer::

    plugins/AdacFDN/plugin.yaml: line 5: /identity/plugin_code: 'Ti ny' does not match ...

Fields (see docs/build.md): ``name``, ``display_name``, ``identity`` (manufacturer,
manufacturer_code, plugin_code, version, bundle_id), ``model`` (factory, checkpoint,
allow_pickle), ``fs``, ``controls`` (rt60, dry_wet, pre_delay), ``strict``, ``formats``,
``faust_options``, ``fractional_order``, ``output``, ``release``, ``sample_rate`` (``mode``: relowered or
resample, ``rates``: the host rates accepted; docs/sample_rate.md), ``backend`` (faust, native or auto:
what realises the model in the plugin).

This module imports no torch or FLAMO: checking a manifest is fast.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml
from jsonschema.exceptions import best_match

from ..common.errors import SchemaError
from ..common.schema import pointer, validator

DEFAULT_FORMATS = ("VST3", "LV2", "Standalone")
DEFAULT_SAMPLE_RATE_MODE = "relowered"  # zero latency, and the targets met: docs/sample_rate.md
DEFAULT_RATES = (44100, 48000, 88200, 96000)
DEFAULT_BACKEND = "faust"  # the .dsp's C++, as every manifest without the field was built
CONTROL_UNITS = {"rt60": "s", "dry_wet": "", "pre_delay": "ms"}


@dataclass(frozen=True)
class Manifest:
    """A validated manifest; paths resolved against the manifest's folder."""

    path: Path
    name: str
    display_name: str
    identity: dict
    factory: str
    checkpoint: Path
    allow_pickle: bool
    fs: int
    controls: dict = field(default_factory=dict)
    strict: bool = True
    formats: tuple = DEFAULT_FORMATS
    faust_options: tuple = ()
    fractional_order: int | None = None
    output: str | None = None
    release: bool = False
    delay_limits: dict | None = None  # {max_samples, max_memory}: raises adac.ir.document's delay bounds
    sample_rate_mode: str = DEFAULT_SAMPLE_RATE_MODE
    rates: tuple = DEFAULT_RATES  # the host rates accepted, ascending, the model's fs among them
    backend: str = DEFAULT_BACKEND  # faust, native or auto

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def codegen_options(self) -> dict:
        """What the .dsp and certificate steps (and ``adac verify``/``render``) pass to the FAUST backend and
        the certificate: only the options the manifest sets (``fractional_order``, ``delay_limits``)."""
        options = {"fractional_order": self.fractional_order, "delay_limits": self.delay_limits}
        return {key: value for key, value in options.items() if value}

    @property
    def sample_rate(self) -> dict:
        """How the plugin follows the host's rate, as the JUCE backend takes it: ``{"mode", "rates", "fs"}``."""
        return {"mode": self.sample_rate_mode, "rates": list(self.rates), "fs": self.fs}

    @property
    def lowered_rates(self) -> tuple:
        """The rates the model is lowered again for (relowered mode; none when the plugin resamples)."""
        return self.rates if self.sample_rate_mode == "relowered" else ()

    @property
    def version(self) -> str:
        return self.identity["version"]

    def output_dir(self, build_root: str | os.PathLike, *, release: bool = False) -> Path:
        """This plugin's artefact folder: ``<build_root>/<output or name>`` (release: ``...-<version>``)."""
        return output_dir(self.path, self.output or self.name, build_root, version=self.version if release else None)


# ------------------------------------------------------------------------------------- YAML bounds

MAX_YAML_DEPTH = 32      # nested mappings/sequences: a manifest needs 4
MAX_NUMBER_DIGITS = 309  # 10**309 is beyond every float (and far from Python's 4300-digit int limit)


def _check_events(text: str, source: str) -> None:
    """Refuse, from PyYAML's event stream (before anything is built), what makes loading slow or deep.

    Anchors and aliases (``&a``, ``*a``, merge keys): a few lines of nested aliases expand to millions of
    nodes (a "billion laughs" document) and a manifest has no use for them. Nesting beyond
    :data:`MAX_YAML_DEPTH` (PyYAML's composer recurses per level) and integers of more than
    :data:`MAX_NUMBER_DIGITS` digits. Syntax errors are left to ``yaml.safe_load``, which names them.
    """
    frames: list[list] = []  # per open collection: [is_mapping, key or index, expecting a key]

    def where(line: int) -> str:
        return f"{source}: line {line}: {pointer(tuple(f[1] for f in frames)) or '/'}"

    def done_value() -> None:  # a value ended: its mapping expects a key next, its sequence the next item
        if frames:
            if frames[-1][0]:
                frames[-1][2] = True
            else:
                frames[-1][1] += 1

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frames.pop()
                done_value()
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            line = event.start_mark.line + 1
            is_key = bool(frames) and frames[-1][0] and frames[-1][2]
            if is_key:
                frames[-1][1] = str(event.value) if isinstance(event, yaml.ScalarEvent) else "?"
                frames[-1][2] = False
            if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
                mark = "*" if isinstance(event, yaml.AliasEvent) else "&"
                raise SchemaError(f"{where(line)}: YAML anchors and aliases ({mark}{event.anchor}) are not allowed "
                                  f"in a manifest: write the value out")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(frames) >= MAX_YAML_DEPTH:
                    raise SchemaError(f"{where(line)}: nested more than {MAX_YAML_DEPTH} levels deep")
                frames.append([isinstance(event, yaml.MappingStartEvent), 0, True])
                continue
            if isinstance(event, yaml.ScalarEvent) and len(event.value) > MAX_NUMBER_DIGITS:
                digits = event.value.lstrip("+-").replace("_", "")
                if digits.isdigit() and (event.implicit[0] or (event.tag or "").endswith(":int")):
                    raise SchemaError(f"{where(line)}: a number of {len(digits)} digits is too large")
            if not is_key:
                done_value()
    except yaml.YAMLError:
        return


# ------------------------------------------------------------------------------------- line numbers

def _line_map(text: str, source: str) -> dict[tuple, int]:
    """JSON-pointer parts -> 1-based line, for every node of the YAML document (keys too, as parts + ('<key>',))."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[tuple, int] = {}

    def walk(node, parts: tuple):
        lines[parts] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key, value in node.value:
                name = str(key.value)
                if name in seen:
                    raise SchemaError(f"{source}: line {key.start_mark.line + 1}: {pointer(parts + (name,))}: "
                                      f"duplicate field (first given on line {seen[name]})")
                seen[name] = key.start_mark.line + 1
                lines[parts + (name, "<key>")] = key.start_mark.line + 1
                walk(value, parts + (name,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, parts + (i,))

    if root is not None:
        walk(root, ())
    return lines


def _fail(source: str, lines: dict, parts: tuple, message: str, *, key: bool = False):
    """Raise a SchemaError naming file, line (of the field, or its nearest parent that has one) and pointer."""
    line = lines.get(parts + ("<key>",)) if key else None
    probe = tuple(parts)
    while line is None and probe:
        line = lines.get(probe)
        probe = probe[:-1]
    where = f"line {line}: " if line else ""
    raise SchemaError(f"{source}: {where}{pointer(parts) or '/'}: {message}")


# ----------------------------------------------------------------------------------------- validation

def _check_schema(document, source: str, lines: dict) -> None:
    error = best_match(validator("manifest.schema.json").iter_errors(document))
    if error is None:
        return
    parts = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        if extra:
            what = "unknown control" if parts == ("controls",) else "unknown field"
            _fail(source, lines, parts + (extra[0],), f"{what} {extra[0]!r} (allowed here: {', '.join(allowed)})", key=True)
    if error.validator == "required":
        _fail(source, lines, parts, error.message)
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "pattern" and description:
        message += f" ({description})"
    _fail(source, lines, parts, message)


def _check_controls(controls: dict, source: str, lines: dict) -> None:
    """Ranges a schema cannot state: min < max and min <= default <= max, for the fields given."""
    for name, spec in (controls or {}).items():
        if not isinstance(spec, dict):
            continue
        unit = CONTROL_UNITS.get(name, "")
        lo, hi, default = spec.get("min"), spec.get("max"), spec.get("default")
        for key, value in (("min", lo), ("max", hi), ("default", default)):
            if value is not None and not math.isfinite(value):
                _fail(source, lines, ("controls", name, key), f"{value} is not a finite number")
        if lo is not None and hi is not None and not lo < hi:
            _fail(source, lines, ("controls", name, "max"), f"max {hi}{unit} must be greater than min {lo}{unit}")
        if default is not None:
            if lo is not None and default < lo:
                _fail(source, lines, ("controls", name, "default"), f"default {default}{unit} is below min {lo}{unit}")
            if hi is not None and default > hi:
                _fail(source, lines, ("controls", name, "default"), f"default {default}{unit} is above max {hi}{unit}")


def output_dir(source, folder: str, build_root, *, version: str | None = None) -> Path:
    """``build_root/folder`` (``folder-version`` in release mode); refuses a folder outside the build tree."""
    relative = PurePosixPath(folder)
    if relative.is_absolute() or ".." in relative.parts or folder.startswith("~"):
        raise SchemaError(f"{source}: /output: {folder!r} is outside the build tree: give a folder relative to "
                          f"the build tree ({build_root}), without '..', a leading '/' or '~'")
    out = (Path(build_root).resolve() / relative.as_posix()).resolve()
    if version:
        out = out.with_name(f"{out.name}-{version}")
    return inside_build_tree(out, build_root, f"{source}: /output: {folder!r} resolves to")


def inside_build_tree(path, build_root, what: str) -> Path:
    """``path`` resolved (symlinks too), or a SchemaError (``what`` first) if it is not inside ``build_root``."""
    path, root = Path(path).resolve(), Path(build_root).resolve()
    if path == root or root not in path.parents:
        raise SchemaError(f"{what} {path}, outside the build tree {root} (outputs go under the build root)")
    return path


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate ``plugin.yaml``; raises :class:`SchemaError` naming file, line and field."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"{source}: no such manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{source}: cannot read the manifest ({exc})") from None
    _check_events(text, source)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise SchemaError(f"{source}: {where}not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # a value PyYAML cannot build (e.g. a date out of range)
        raise SchemaError(f"{source}: not a valid manifest ({type(exc).__name__}: {str(exc)[:120]})") from None
    lines = _line_map(text, source)
    if not isinstance(document, dict):
        raise SchemaError(f"{source}: /: the manifest must be a mapping of fields (name, identity, model, fs, ...)")
    _check_schema(document, source, lines)
    _check_controls(document.get("controls") or {}, source, lines)
    code = document["identity"]["plugin_code"]
    if "AU" in document.get("formats", ()) and sum(ch.isupper() for ch in code) != 1:
        _fail(source, lines, ("identity", "plugin_code"),
              f"{code!r}: an AU plugin code needs exactly one upper-case letter (formats lists AU)")
    if "output" in document:
        # relative, no '..': checked again against the real build root when a step writes
        output_dir(f"{source}: line {lines.get(('output',), '?')}", document["output"], "build")
    model = document["model"]
    return Manifest(
        path=path.resolve(),
        name=document["name"],
        display_name=document.get("display_name", document["name"]),
        identity=dict(document["identity"]),
        factory=model["factory"],
        checkpoint=(path.parent / model["checkpoint"]).resolve(),
        allow_pickle=bool(model.get("allow_pickle", False)),
        fs=int(document["fs"]),
        controls=dict(document.get("controls") or {}),
        strict=bool(document.get("strict", True)),
        formats=tuple(document.get("formats", DEFAULT_FORMATS)),
        faust_options=tuple(document.get("faust_options", ())),
        fractional_order=document.get("fractional_order"),
        output=document.get("output"),
        release=bool(document.get("release", False)),
        delay_limits=dict(document["delay_limits"]) if document.get("delay_limits") else None,
        sample_rate_mode=(document.get("sample_rate") or {}).get("mode", DEFAULT_SAMPLE_RATE_MODE),
        rates=tuple(sorted(set((document.get("sample_rate") or {}).get("rates", DEFAULT_RATES)) | {int(document["fs"])})),
        backend=document.get("backend", DEFAULT_BACKEND),
    )


# ------------------------------------------------------------------------------------------ build plan

def step_parameters(m: Manifest) -> dict[str, dict]:
    """The manifest fields each build step reads: they become that step's SCons signature (Value node),
    so a change rebuilds that step and what follows it, nothing before it."""
    return {
        "ir": {"fs": m.fs, "factory": m.factory, "allow_pickle": m.allow_pickle, "name": m.display_name},
        "dsp": {"controls": m.controls, "fractional_order": m.fractional_order, "delay_limits": m.delay_limits,
                "lowered_rates": list(m.lowered_rates)},
        "cert": {"controls": m.controls, "strict": m.strict, "fractional_order": m.fractional_order,
                 "delay_limits": m.delay_limits, "lowered_rates": list(m.lowered_rates)},
        "juce": {"name": m.name, "display_name": m.display_name, "identity": m.identity,
                 "formats": list(m.formats), "faust_options": list(m.faust_options), "sample_rate": m.sample_rate,
                 "backend": m.backend, **({} if m.backend == "faust" else
                                          {"controls": m.controls, "fractional_order": m.fractional_order,
                                           "delay_limits": m.delay_limits})},
        "backend": {"controls": m.controls, "fractional_order": m.fractional_order, "delay_limits": m.delay_limits,
                    "faust_options": list(m.faust_options)},
        "plugin": {"name": m.name, "version": m.version, "formats": list(m.formats)},
    }


def _distribution(name: str) -> dict | None:
    """Version and METADATA path of an installed package (the SConstruct notices when the path goes away)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    meta = next((f for f in dist.files or () if f.name == "METADATA"), None)
    return {"version": dist.version, "metadata": str(dist.locate_file(meta)) if meta else None}


def build_plan(paths) -> dict:
    """What the SConstruct needs to wire each manifest: validated fields, sources, per-step parameters.

    Printed as JSON by ``adac plan``; the SConstruct caches it by manifest content,
    so a no-op build starts no Python with adac/torch in it.
    """
    plans = {}
    for path in paths:
        m = load_manifest(path)
        plans[str(path)] = {
            "name": m.name, "version": m.version, "output": m.output or m.name, "release": m.release,
            "formats": list(m.formats), "checkpoint": str(m.checkpoint), "backend": m.backend,
            "params": step_parameters(m),
        }
    tools = {name: _distribution(name) for name in ("flamo", "torch")}
    return {"manifests": plans, "tools": tools}
