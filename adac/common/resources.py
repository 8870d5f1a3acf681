"""The one place that finds adac's data folders: ``schemas/``, ``faust/``, ``juce_template/``, ``hosts/``.

In this repository they are top-level folders (the single source); an installed package carries them
under ``adac/_data/`` (mapped there at build time). Every stage asks :func:`data_dir`, never
``Path(__file__).parent.parent``.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

FOLDERS = ("schemas", "faust", "juce_template", "hosts")


@lru_cache(maxsize=None)
def data_dir(name: str) -> Path:
    """The folder ``name`` (one of :data:`FOLDERS`) as a real path."""
    if name not in FOLDERS:
        raise ValueError(f"unknown adac data folder {name!r} (known: {', '.join(FOLDERS)})")
    packaged = Path(str(resources.files("adac"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / name


def data_file(name: str, *parts: str) -> Path:
    """A file inside a data folder: ``data_file("schemas", "ir.schema.json")``."""
    return data_dir(name).joinpath(*parts)
