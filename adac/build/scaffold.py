"""``adac new DIR``: a ready adac project in DIR.

    DIR/SConstruct                    loads adac's SCons tool from the installed package (no copied files)
    DIR/plugins/<Name>/plugin.yaml    the manifest
    DIR/plugins/<Name>/model.py       a FLAMO model factory (a stereo 4-line FDN), or a copy of --factory's file
    DIR/plugins/<Name>/checkpoint.pt  the factory's initial state (seeded), or a copy of --checkpoint
    DIR/train.py                      a short training loop that rewrites the checkpoint
    DIR/.gitignore, DIR/README.md     build outputs; the next three commands

A non-empty DIR is refused unless ``force``; even then no existing file is overwritten (it is kept and
reported). The templates are ``adac/scaffold_template/*.in`` (package data).
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import AdacError

TEMPLATES = Path(__file__).resolve().parent.parent / "scaffold_template"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
DEFAULT_FACTORY = "model.py:build_model"
DEFAULT_CHECKPOINT = "checkpoint.pt"


@dataclass
class Scaffold:
    root: Path
    name: str
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # files that were there already (with --force)

    def summary(self) -> str:
        lines = [f"created adac project {self.name} in {self.root}"]
        lines += [f"  wrote {p.relative_to(self.root)}" for p in self.written]
        lines += [f"  kept  {p.relative_to(self.root)} (already there: not overwritten)" for p in self.kept]
        lines += ["next:", f"  cd {self.root}", "  python3 train.py", "  scons"]
        return "\n".join(lines)


def project_name(root: Path, name: str | None) -> str:
    """``--name``, else the folder's name made an identifier (letters, digits, ``_``; starts with a letter)."""
    if name is not None:
        if not NAME_RE.match(name):
            raise AdacError(f"--name {name!r}: a letter, then letters, digits or '_' (at most 40)")
        return name
    words = re.findall(r"[A-Za-z0-9]+", root.resolve().name)
    candidate = "".join(w[:1].upper() + w[1:] for w in words)
    candidate = candidate.lstrip("0123456789")[:40]
    return candidate if NAME_RE.match(candidate) else "MyReverb"


def four_letter_code(text: str, fallback: str) -> str:
    """A 4-character code from ``text``: first letter upper case, the rest lower case (one upper case: AU-safe)."""
    chars = [c for c in text if c.isascii() and c.isalnum()]
    if not chars or not chars[0].isalpha():
        chars = list(fallback)
    code = (chars[0].upper() + "".join(chars[1:4]).lower()).ljust(4, "x")
    return code


def _render(template: str, values: dict) -> str:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise AssertionError(f"{template}: unfilled placeholder")  # a template bug, tested
    return text


def _check_factory(spec: str) -> tuple[Path, str]:
    file, sep, function = spec.rpartition(":")
    if not sep or not file.endswith(".py") or not function.isidentifier():
        raise AdacError(f"--factory {spec!r}: expected file.py:function")
    path = Path(file)
    if not path.is_file():
        raise AdacError(f"--factory {spec!r}: {path} is not a file")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise AdacError(f"--factory {spec!r}: {path} is not Python source ({exc})") from None
    if not any(isinstance(node, ast.FunctionDef) and node.name == function for node in tree.body):
        raise AdacError(f"--factory {spec!r}: {path} defines no top-level function {function!r}")
    return path, function


def _initial_checkpoint(root: Path, train_script: str) -> None:
    """Write the checkpoint with the project's training script and no training step (``--steps 0``): the
    factory's seeded initial state, which `scons` can compile at once. The script is our template even when
    the user's own ``train.py`` was kept (it runs from a temporary file in the project root)."""
    import subprocess
    import sys

    runner = root / f".adac-new-{os.getpid()}.py"
    _write_new(runner, train_script.encode())
    try:
        proc = subprocess.run([sys.executable, str(runner), "--steps", "0"], cwd=root, capture_output=True, text=True)
    finally:
        runner.unlink(missing_ok=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines() or ["(no output)"]
        raise AdacError(f"{root}: making the initial checkpoint from the factory failed: {lines[-1]}")


def new_project(root, name: str | None = None, factory: str | None = None, checkpoint=None,
                force: bool = False, fs: int = 48000, manufacturer: str = "My Company") -> Scaffold:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise AdacError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise AdacError(f"{root}: folder is not empty (use --force to add the missing files; none is overwritten)")
    if checkpoint is not None and factory is None:
        raise AdacError("--checkpoint needs --factory (the model the checkpoint belongs to)")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise AdacError(f"--checkpoint {checkpoint}: not a file")
    if not 8000 <= fs <= 192000:
        raise AdacError(f"--fs {fs}: the sample rate must lie in 8000..192000 Hz")
    name = project_name(root, name)
    plugin = Path("plugins") / name

    if factory is not None:
        factory_path, function = _check_factory(factory)
        factory_field = f"{factory_path.name}:{function}"
    else:
        factory_path, function, factory_field = None, "build_model", DEFAULT_FACTORY
    checkpoint_name = Path(checkpoint).name if checkpoint is not None else DEFAULT_CHECKPOINT
    if not checkpoint_name.endswith((".pt", ".pth", ".ckpt", ".bin")):
        checkpoint_name = DEFAULT_CHECKPOINT

    values = {"NAME": name, "FACTORY": factory_field, "CHECKPOINT": checkpoint_name, "FS": fs,
              "MANUFACTURER": manufacturer.replace('"', "").replace("\n", " ") or "My Company",
              "MANUFACTURER_CODE": four_letter_code(manufacturer, "Mcmp"),
              "PLUGIN_CODE": four_letter_code(name, "Plug")}
    files: dict[Path, bytes | None] = {
        Path("SConstruct"): _render("SConstruct.in", values).encode(),
        Path(".gitignore"): _render("gitignore.in", values).encode(),
        Path("README.md"): _render("README.md.in", values).encode(),
        Path("train.py"): _render("train.py.in", values).encode(),
        plugin / "plugin.yaml": _render("plugin.yaml.in", values).encode(),
        plugin / factory_field.partition(":")[0]: (factory_path.read_bytes() if factory_path
                                                   else _render("model.py.in", values).encode()),
        plugin / checkpoint_name: Path(checkpoint).read_bytes() if checkpoint is not None else None,
    }
    result = Scaffold(root=root.resolve(), name=name)
    root.mkdir(parents=True, exist_ok=True)
    pending_checkpoint = None
    for rel, content in files.items():
        path = result.root / rel
        if path.exists() or path.is_symlink():
            result.kept.append(path)
            continue
        if content is None:
            pending_checkpoint = path  # made from the factory once it is written
            continue
        _write_new(path, content)
        result.written.append(path)
    if pending_checkpoint is not None:
        _initial_checkpoint(result.root, files[Path("train.py")].decode())
        result.written.append(pending_checkpoint)
    from .manifest import load_manifest

    load_manifest(result.root / plugin / "plugin.yaml")  # what we wrote (or kept) is a valid manifest
    return result


def _write_new(path: Path, content: bytes) -> None:
    """Write ``path`` only if it does not exist (O_EXCL: a file that appears meanwhile is not overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise AdacError(f"{path}: appeared while writing the project; left as it is") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
