"""The one place that finds adac's data folders: ``schemas/``, ``faust/``, ``juce_template/``, ``hosts/``, ``runtime/``.

In this repository they are top-level folders (the single source). A built package (wheel, sdist, regular
``pip install``) carries them under ``adac/_data/``: ``pyproject.toml`` maps each top-level folder to the
package ``adac._data.<folder>`` at build time. An editable install (``pip install -e .``) runs from the
checkout and reads the top-level folders. Both give the same files. Every stage asks :func:`data_dir`,
never ``Path(__file__).parent.parent``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

FOLDERS = ("schemas", "faust", "juce_template", "hosts", "runtime")

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the adac package folder
SOURCE_ROOT = PACKAGE_ROOT.parent                   # the checkout, when adac runs from one


def candidates(name: str) -> tuple[Path, Path]:
    """Where ``name`` is looked for, in order: the installed package's copy, then the checkout's folder."""
    return PACKAGE_ROOT / "_data" / name, SOURCE_ROOT / name


@lru_cache(maxsize=None)
def data_dir(name: str) -> Path:
    """The folder ``name`` (one of :data:`FOLDERS`) as a real path."""
    if name not in FOLDERS:
        raise ValueError(f"unknown adac data folder {name!r} (known: {', '.join(FOLDERS)})")
    for folder in candidates(name):
        if folder.is_dir():
            return folder
    tried = " and ".join(str(p) for p in candidates(name))
    raise FileNotFoundError(
        f"adac's data folder {name!r} is missing (looked in {tried}): the package was built without its data; "
        "reinstall adac from a wheel or sdist built by `pip wheel .`, or `pip install -e .` in a checkout")


def data_file(name: str, *parts: str) -> Path:
    """A file inside a data folder: ``data_file("schemas", "ir.schema.json")``."""
    return data_dir(name).joinpath(*parts)
