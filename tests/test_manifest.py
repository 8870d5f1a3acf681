"""Manifests and checkpoints: bad input gives an error naming the file, the field and the line."""
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from adac.common.errors import AdacError, SchemaError
from adac.build.scons.adac import factory_sources
from adac.build.manifest import load_manifest
from adac.frontend.flamo import load_model

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


@pytest.mark.parametrize("old,new,field,line,says", [
    ("plugin_code: Tiny", "plugin_code: Ti ny", "/identity/plugin_code", 5, "4 ASCII alphanumerics"),
    ("plugin_code: Tiny", "plugin_code: Tin", "/identity/plugin_code", 5, "does not match"),
    ("manufacturer_code: Atst", "manufacturer_code: atst", "/identity/manufacturer_code", 4, "upper case"),
    ("manufacturer_code: Atst", "manufacturer_code: Atst5", "/identity/manufacturer_code", 4, "does not match"),
    ("version: 1.0.0", "version: one", "/identity/version", 6, "X.Y.Z"),
    ("version: 1.0.0", "version: 1.0", "/identity/version", 6, "is not of type 'string'"),
    ("version: 1.0.0", "version: 1.0.256", "/identity/version", 6, "0..255"),
    ("fs: 48000", "fs: 48000\ncontrols:\n  reverb_size: true", "/controls/reverb_size", 12, "unknown control"),
    ("fs: 48000", "fs: 48000\ncolour: blue", "/colour", 11, "unknown field 'colour'"),
    ("  checkpoint: checkpoint.pt", "  checkpoint: checkpoint.pt\n  weights: x", "/model/weights", 10, "unknown field"),
    ("fs: 48000", "fs: 48000\ncontrols:\n  rt60: {min: 0, max: 2}", "/controls/rt60/min", 12, "minimum"),
    ("fs: 48000", "fs: 48000\ncontrols:\n  rt60:\n    min: 2.0\n    max: 1.0", "/controls/rt60/max", 14,
     "max 1.0s must be greater than min 2.0s"),
    ("fs: 48000", "fs: 48000\ncontrols:\n  dry_wet: {max: 1.5}", "/controls/dry_wet/max", 12, "maximum of 1"),
    ("fs: 48000", "fs: 48000\ncontrols:\n  dry_wet: {law: cubic}", "/controls/dry_wet/law", 12, "'cubic' is not one of"),
    ("fs: 48000", "fs: 48000\ncontrols:\n  pre_delay:\n    default: -5", "/controls/pre_delay/default", 13, "minimum"),
    ("fs: 48000", "fs: 48000\ncontrols:\n  pre_delay:\n    default: 50\n    max: 20",
     "/controls/pre_delay/default", 13, "default 50ms is above max 20ms"),
    ("fs: 48000", "fs: 48000\nformats: [VST3, VST2]", "/formats/1", 11, "'VST2' is not one of"),
    ("fs: 48000", "fs: 48000\nfaust_options: [-double, '-a evil.cpp']", "/faust_options/1", 11, "does not match"),
    ("fs: 48000", "fs: 48000\nstrict: maybe", "/strict", 11, "is not of type 'boolean'"),
    ("fs: 48000", "fs: 48000\nbackend: fast", "/backend", 11, "'fast' is not one of ['faust', 'native', 'auto']"),
    ("fs: 48000", "fs: 48000\nfs: 44100", "/fs", 11, "duplicate field (first given on line 10)"),
    ("fs: 48000", "fs: 1000", "/fs", 10, "less than the minimum"),
    ("  factory: model.py:build_model", "  factory: 'os; rm -rf /:x'", "/model/factory", 8, "does not match"),
    ("name: Tiny", 'name: "Tiny\\"; system(rm)"', "/name", 1, "C++/CMake identifiers"),
    ("name: Tiny", "name: Tiny\ndisplay_name: 'x\"); system(\"rm'", "/display_name", 2, "does not match"),
    ("  manufacturer: adac tests", "  manufacturer: 'a$(rm -rf)'", "/identity/manufacturer", 3, "does not match"),
])
def test_bad_fields_name_file_field_and_line(plugin, old, new, field, line, says):
    path = edit(plugin, old, new)
    with pytest.raises(SchemaError) as info:
        load_manifest(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line {line}: {field}: "), message
    assert says in message, message


def test_au_plugin_code(plugin):
    edit(plugin, "plugin_code: Tiny", "plugin_code: TINY")
    path = edit(plugin, "fs: 48000", "fs: 48000\nformats: [VST3, AU]")
    with pytest.raises(SchemaError, match=r"line 5: /identity/plugin_code: 'TINY': an AU plugin code needs exactly one"):
        load_manifest(path)


@pytest.mark.parametrize("output", ["../../etc", "/tmp/x", "a/../../x", "~/x"])
def test_output_outside_the_build_tree_is_refused(plugin, output):
    path = edit(plugin, "fs: 48000", f"fs: 48000\noutput: {output}")
    with pytest.raises(SchemaError, match=r"plugin\.yaml: line 11: /output: .*outside the build tree"):
        load_manifest(path)


def test_output_inside_the_build_tree(plugin, tmp_path):
    manifest = load_manifest(edit(plugin, "fs: 48000", "fs: 48000\noutput: reverbs/tiny"))
    assert manifest.output_dir(tmp_path / "build") == (tmp_path / "build" / "reverbs" / "tiny").resolve()
    assert manifest.output_dir(tmp_path / "build", release=True).name == "tiny-1.0.0"


def test_missing_required_field(plugin):
    path = plugin / "plugin.yaml"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if not line.startswith("fs:")) + "\n")
    with pytest.raises(SchemaError, match=r"plugin\.yaml: /: 'fs' is a required property"):
        load_manifest(path)


def test_not_a_mapping(plugin):
    path = plugin / "plugin.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(SchemaError, match=r"plugin\.yaml: /: the manifest must be a mapping"):
        load_manifest(path)


def test_defaults_and_resolved_paths(plugin):
    m = load_manifest(plugin / "plugin.yaml")
    assert m.strict is True and m.allow_pickle is False and m.release is False
    assert m.formats == ("VST3", "LV2", "Standalone") and m.controls == {} and m.output is None
    assert m.backend == "faust"  # manifests written before the native backend build as they did
    assert factory_sources(str(plugin), m.factory) == [str((plugin / "model.py").resolve())]
    assert m.output_dir("build").name == "Tiny"


def test_module_factory(plugin):
    """``module:function`` imports from the manifest's folder; its file is what the IR depends on."""
    path = edit(plugin, "model.py:build_model", "model:build_model")
    m = load_manifest(path)
    assert factory_sources(str(plugin), m.factory) == [str((plugin / "model.py").resolve())]
    assert load_model(m) is not None


def test_hostile_display_name_is_sanitised_before_cpp(plugin, tmp_path):
    """Characters the schema lets through (<>&;'@ and non-ASCII) reach neither FAUST nor C++ unescaped."""
    from adac.build import steps

    hostile = "R\u00e9verb <b>&'; @PLUGIN@ */ //"
    path = edit(plugin, "name: Tiny", f"name: Tiny\ndisplay_name: \"{hostile}\"")
    m = load_manifest(path)
    assert m.display_name == hostile
    out = tmp_path / "build"
    steps.dsp_step(m, steps.ir_step(m, out / "Tiny.json"), out / "Tiny.dsp")
    declare = next(line for line in (out / "Tiny.dsp").read_text().splitlines() if line.startswith("declare name"))
    project = steps.juce_step(m, out / "Tiny.dsp", out / "juce")
    cmake = (project / "CMakeLists.txt").read_text()
    config = (project / "PluginConfig.h").read_text()
    for text in (declare, cmake, config):
        assert "<b>" not in text and "@PLUGIN@" not in text and "*/" not in text and "\u00e9" not in text, text
    assert re.search(r'#define ADAC_DISPLAY_NAME "[A-Za-z0-9 ._()+-]+"', config), config


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


def test_factory_import_error_names_field_and_module(plugin):
    (plugin / "model.py").write_text("import no_such_package_xyz\n")
    with pytest.raises(AdacError, match=r"/model/factory: importing .*model\.py failed: ModuleNotFoundError: .*no_such_package_xyz"):
        load_model(load_manifest(plugin / "plugin.yaml"))
    path = edit(plugin, "model.py:build_model", "no_such_module:build_model")
    with pytest.raises(AdacError, match=r"/model/factory: importing module 'no_such_module'"):
        load_model(load_manifest(path))


def test_factory_that_fails_or_returns_no_model(plugin):
    (plugin / "model.py").write_text("def build_model(fs):\n    raise ValueError('bad fs')\n\ndef other(fs):\n    return 42\n")
    with pytest.raises(AdacError, match=r"/model/factory: model\.py:build_model\(48000\) failed: ValueError: bad fs"):
        load_model(load_manifest(plugin / "plugin.yaml"))
    path = edit(plugin, "model.py:build_model", "model.py:other")
    with pytest.raises(AdacError, match=r"returned int, not a FLAMO model"):
        load_model(load_manifest(path))


@pytest.mark.parametrize("wrap", ["state_dict", "model"])
def test_checkpoint_wrapped_in_a_training_dict(plugin, wrap):
    state = torch.load(plugin / "checkpoint.pt", weights_only=True)
    torch.save({wrap: state, "epoch": 3, "optimizer": {"lr": torch.tensor(0.01)}}, plugin / "checkpoint.pt")
    model = load_model(load_manifest(plugin / "plugin.yaml"))
    key = next(iter(state))
    assert torch.equal(model.state_dict()[key], state[key])


def test_cli_check_and_aliases(plugin, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "adac", "check", str(plugin / "plugin.yaml")],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "ok (Tiny 1.0.0" in ok.stdout
    edit(plugin, "version: 1.0.0", "version: 1.0.x")
    bad = subprocess.run([sys.executable, "-m", "adac", "build-ir", str(plugin / "plugin.yaml"), "build/x.json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "line 6: /identity/version" in bad.stderr and "Traceback" not in bad.stderr


# --- hostile YAML: aliases, trailing newlines, depth, huge numbers ----------------------------------


def test_yaml_alias_bomb_is_refused_within_a_second(plugin):
    """Nested aliases expand to 10^7 nodes (40 s and 2.2 GB before): anchors and aliases are refused."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefg"):
        prev = "abcdefg"[i]
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    path = plugin / "plugin.yaml"
    path.write_text("\n".join(levels) + "\n" + path.read_text())
    start = time.monotonic()
    with pytest.raises(SchemaError, match=r"plugin\.yaml: line 1: /a: YAML anchors and aliases \(&a\) are not allowed"):
        load_manifest(path)
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("old,new,field,line", [
    ("fs: 48000", "fs: 48000\ncontrols:\n  rt60: &r {min: 0.5, max: 2}\n  pre_delay: *r", "/controls/rt60", 12),
    ("fs: 48000", "fs: 48000\nformats: [VST3, *f]", "/formats/1", 11),
    ("identity:", "identity: &id", "/identity", 2),
    ("fs: 48000", "fs: 48000\ncontrols:\n  <<: *m", "/controls/<<", 12),
])
def test_yaml_anchors_aliases_and_merge_keys_are_refused(plugin, old, new, field, line):
    path = edit(plugin, old, new)
    with pytest.raises(SchemaError, match=rf"plugin\.yaml: line {line}: {field}: YAML anchors and aliases"):
        load_manifest(path)


@pytest.mark.parametrize("old,new,field,line", [
    ("name: Tiny", 'name: "Evil\\n"', "/name", 1),
    ("name: Tiny", "name: |\n  Evil", "/name", 1),  # a block scalar ends in a newline
    ("name: Tiny", 'name: Tiny\ndisplay_name: "Evil\\n"', "/display_name", 2),
    ("  manufacturer: adac tests", '  manufacturer: "adac\\n"', "/identity/manufacturer", 3),
    ("manufacturer_code: Atst", 'manufacturer_code: "Atst\\n"', "/identity/manufacturer_code", 4),
    ("plugin_code: Tiny", 'plugin_code: "Tiny\\n"', "/identity/plugin_code", 5),
    ("version: 1.0.0", 'version: "1.0.0\\n"', "/identity/version", 6),
    ("version: 1.0.0", 'version: 1.0.0\n  bundle_id: "com.x.y\\n"', "/identity/bundle_id", 7),
    ("  factory: model.py:build_model", '  factory: "model.py:build_model\\n"', "/model/factory", 8),
    ("fs: 48000", 'fs: 48000\nfaust_options: ["-double\\n"]', "/faust_options/0", 11),
    ("fs: 48000", 'fs: 48000\noutput: "tiny\\n"', "/output", 11),
])
def test_a_trailing_newline_matches_no_pattern(plugin, old, new, field, line):
    """``$`` matches before a final newline under Python's re.search: every pattern is anchored at the true end."""
    path = edit(plugin, old, new)
    with pytest.raises(SchemaError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}: line {line}: {field}: "), info.value
    assert "does not match" in str(info.value)


def test_no_schema_pattern_ends_in_a_bare_dollar():
    """Every ``pattern`` of every schema (applied with re.search) refuses a string with a final newline."""
    import json as _json

    def patterns(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "pattern" and isinstance(item, str):
                    yield item
                else:
                    yield from patterns(item)
        elif isinstance(value, list):
            for item in value:
                yield from patterns(item)

    found = 0
    for schema in sorted((ROOT / "schemas").glob("*.json")):
        for pattern in patterns(_json.loads(schema.read_text())):
            found += 1
            assert pattern.startswith("^") and (pattern.endswith("$(?!\\n)") or pattern.endswith("\\Z")), (schema, pattern)
            assert re.search(pattern, "\n") is None or re.search(pattern, "") is not None
    assert found >= 13


@pytest.mark.parametrize("extra,message", [
    ("fs: " + "1" * 5000, r"line 10: /fs: a number of 5000 digits is too large"),
    ("extra: " + "[" * 100000 + "]" * 100000, r"line 11: /extra/0/0/.*: nested more than 32 levels deep"),
    ("extra: " + "{a: " * 200 + "1" + "}" * 200, r"line 11: /extra/a/a/.*: nested more than 32 levels deep"),
], ids=["5000-digit-int", "100000-deep-list", "200-deep-mapping"])
def test_huge_or_deep_yaml_values_are_one_line_errors(plugin, extra, message):
    path = plugin / "plugin.yaml"
    text = path.read_text()
    if extra.startswith("fs:"):
        text = text.replace("fs: 48000", extra)
    else:
        text += extra + "\n"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message):
        load_manifest(path)


@pytest.mark.parametrize("content", [b"name: \xff\xfe Tiny\n", None], ids=["not-utf8", "directory"])
def test_unreadable_manifests_are_one_line_errors(plugin, tmp_path, content):
    if content is None:
        path = tmp_path / "folder.yaml"
        path.mkdir()
    else:
        path = plugin / "plugin.yaml"
        path.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "adac", "check", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"adac: error: {path}: cannot read the manifest") and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("backend", ["faust", "native", "auto"])
def test_backend_is_read_and_enters_the_juce_step_signature(plugin, backend):
    """The backend is a JUCE-step parameter (a change rebuilds the project and the plugin, not the .dsp); the
    native kernel's classes are made from the IR with the controls, so they are the JUCE step's then too."""
    from adac.build.manifest import step_parameters

    m = load_manifest(edit(plugin, "fs: 48000", f"fs: 48000\nbackend: {backend}"))
    assert m.backend == backend
    params = step_parameters(m)
    assert params["juce"]["backend"] == backend
    assert ("controls" in params["juce"]) == (backend != "faust")
    assert "backend" not in params["dsp"] and "backend" not in params["cert"]
