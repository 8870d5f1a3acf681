"""Manifests and checkpoints: bad input gives an error naming the file, the field and the line."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from adac.errors import AdacError, SchemaError
from adac.manifest import load_manifest
from adac.pipeline import load_model

DATA = Path(__file__).parent / "data" / "plugins" / "Tiny"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def plugin(tmp_path):
    folder = tmp_path / "Tiny"
    shutil.copytree(DATA, folder)
    return folder


def edit(folder, old, new):
    path = folder / "plugin.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def test_example_and_test_manifests_load():
    example = load_manifest(ROOT / "plugins" / "AdacFDN" / "plugin.yaml")
    assert example.name == "AdacFDN" and example.fs == 48000 and example.strict
    tiny = load_manifest(DATA / "plugin.yaml")
    assert tiny.checkpoint == (DATA / "checkpoint.pt").resolve()


@pytest.mark.parametrize("old,new,field,line", [
    ("plugin_code: Tiny", "plugin_code: Ti ny", "/identity/plugin_code", 5),
    ("manufacturer_code: Atst", "manufacturer_code: atst", "/identity/manufacturer_code", 4),
    ("version: 1.0.0", "version: one", "/identity/version", 6),
    ("fs: 48000", "fs: 48000\ncontrols:\n  reverb_size: true", "/controls", 12),
    ("fs: 48000", "fs: 48000\ncolour: blue", "/", None),
    ("name: Tiny", 'name: "Tiny\\"; system(rm)"', "/name", 1),
])
def test_bad_fields_name_file_field_and_line(plugin, old, new, field, line):
    path = edit(plugin, old, new)
    with pytest.raises(SchemaError) as info:
        load_manifest(path)
    message = str(info.value)
    assert str(path) in message and f": {field}:" in message
    if line:
        assert f"line {line}:" in message


def test_yaml_syntax_error_names_line(plugin):
    path = plugin / "plugin.yaml"
    path.write_text("name: Tiny\nidentity: [unclosed\n")
    with pytest.raises(SchemaError, match=r"plugin\.yaml: line \d+: not valid YAML"):
        load_manifest(path)


def test_missing_checkpoint(plugin):
    (plugin / "checkpoint.pt").unlink()
    with pytest.raises(AdacError, match=r"/model/checkpoint: no such file .*checkpoint\.pt"):
        load_model(load_manifest(plugin / "plugin.yaml"))


def test_checkpoint_of_another_architecture(plugin):
    state = torch.load(plugin / "checkpoint.pt", weights_only=True)
    state["core.extra.param"] = torch.zeros(3)
    del state[next(k for k in state if "mixing_matrix" in k)]
    state[next(k for k in state if "output_gain" in k)] = torch.zeros(2, 4)
    torch.save(state, plugin / "checkpoint.pt")
    with pytest.raises(AdacError) as info:
        load_model(load_manifest(plugin / "plugin.yaml"))
    message = str(info.value)
    assert "missing keys: " in message and "mixing_matrix" in message
    assert "unexpected keys: core.extra.param" in message
    assert "shape mismatches: " in message and "checkpoint (2, 4), model (1, 4)" in message


class TrainingRecord:
    """Arbitrary pickled object in a checkpoint: only loadable with weights_only=False."""


def test_pickled_checkpoint_needs_the_opt_in(plugin):
    manifest = load_manifest(plugin / "plugin.yaml")
    state = torch.load(plugin / "checkpoint.pt", weights_only=True)
    torch.save({"state_dict": state, "record": TrainingRecord()}, plugin / "checkpoint.pt")
    with pytest.raises(AdacError, match="weights_only=True.*allow_pickle: true"):
        load_model(manifest)
    edit(plugin, "  checkpoint: checkpoint.pt", "  checkpoint: checkpoint.pt\n  allow_pickle: true")
    assert load_model(load_manifest(plugin / "plugin.yaml")) is not None


def test_factory_errors_name_the_field(plugin):
    edit(plugin, "model.py:build_model", "model.py:no_such_function")
    with pytest.raises(AdacError, match=r"/model/factory: .* has no function 'no_such_function'"):
        load_model(load_manifest(plugin / "plugin.yaml"))


def test_cli_refuses_outputs_outside_the_build_tree_and_prints_no_traceback(plugin, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "adac", "--build-root", str(tmp_path / "build"), "ir",
                           str(plugin / "plugin.yaml"), str(tmp_path / "elsewhere" / "x.json")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "outside the build tree" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_cli_user_error_is_one_line(plugin, tmp_path):
    (plugin / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "adac", "--build-root", str(tmp_path), "ir",
                           str(plugin / "plugin.yaml"), str(tmp_path / "Tiny.json")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.startswith("adac: error: ") and "cannot load checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "Tiny.json").exists()
