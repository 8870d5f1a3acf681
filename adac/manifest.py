"""Plugin manifests: ``plugins/<Name>/plugin.yaml``, validated by ``schemas/manifest.schema.json``.

Errors name the file, the field (JSON pointer) and the line PyYAML reports for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import SchemaError
from .ir import check_schema

DEFAULT_FORMATS = ("VST3", "LV2", "Standalone")


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

    @property
    def folder(self) -> Path:
        return self.path.parent


def _line_of(text: str, parts: list) -> int | None:
    """1-based line of the YAML node at a JSON-pointer path, if PyYAML can tell."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            return None
    return node.start_mark.line + 1 if node is not None else None


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such manifest") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise SchemaError(f"{path}: {where}not valid YAML ({getattr(exc, 'problem', exc)})") from None
    try:
        check_schema(document, "manifest.schema.json", source=str(path))
    except SchemaError as exc:
        # add the line of the offending field
        message = str(exc)
        pointer = message[len(str(path)) + 2:].split(":", 1)[0]
        parts = [int(p) if p.isdigit() else p for p in pointer.strip("/").split("/") if p]
        line = _line_of(text, parts)
        while line is None and parts:
            parts = parts[:-1]
            line = _line_of(text, parts)
        if line is not None:
            raise SchemaError(message.replace(f"{path}: ", f"{path}: line {line}: ", 1)) from None
        raise
    model = document["model"]
    return Manifest(
        path=path.resolve(),
        name=document["name"],
        display_name=document.get("display_name", document["name"]),
        identity=document["identity"],
        factory=model["factory"],
        checkpoint=(path.parent / model["checkpoint"]).resolve(),
        allow_pickle=bool(model.get("allow_pickle", False)),
        fs=int(document["fs"]),
        controls=document.get("controls", {}) or {},
        strict=bool(document.get("strict", True)),
        formats=tuple(document.get("formats", DEFAULT_FORMATS)),
        faust_options=tuple(document.get("faust_options", ())),
        fractional_order=document.get("fractional_order"),
    )
