"""``adac new`` (a project outside this repository that `scons` builds), ``adac doctor``, ``adac verify``,
``adac render`` and ``adac plot``.

The fast tests run the commands in-process (``adac.build.cli.main``); the project test runs ``adac new`` and
``scons STEPS=ir,dsp,cert`` as a user would, in a temporary folder. The ``juce`` test builds the new project's
VST3 (minutes: its own JUCE build tree).
"""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from flamo.processor import dsp, system

import adac
from adac.build import scaffold
from adac.build.cli import main
from adac.build.manifest import load_manifest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "plugins" / "AdacFDN"
FS = 48000


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# -------------------------------------------------------------------------------------------- adac new

def test_project_name_from_the_folder():
    assert scaffold.project_name(Path("my-reverb proj"), None) == "MyReverbProj"
    assert scaffold.project_name(Path("2024_room"), None) == "Room"
    assert scaffold.project_name(Path("---"), None) == "MyReverb"
    assert scaffold.project_name(Path("x"), "Given_1") == "Given_1"
    with pytest.raises(adac.AdacError, match="--name"):
        scaffold.project_name(Path("x"), "1bad")
    assert scaffold.four_letter_code("my company", "Mcmp") == "Myco"
    assert scaffold.four_letter_code("Ab", "Mcmp") == "Abxx"


def test_templates_fill_every_placeholder_and_parse():
    values = {"NAME": "Tiny", "FACTORY": "model.py:build_model", "CHECKPOINT": "checkpoint.pt", "FS": 44100,
              "MANUFACTURER": "Me", "MANUFACTURER_CODE": "Mexx", "PLUGIN_CODE": "Tiny"}
    templates = sorted(p.name for p in scaffold.TEMPLATES.glob("*.in"))
    assert templates == ["README.md.in", "SConstruct.in", "gitignore.in", "model.py.in", "plugin.yaml.in", "train.py.in"]
    for name in templates:
        text = scaffold._render(name, values)
        assert "{{" not in text and "}}" not in text
        if name in ("SConstruct.in", "model.py.in", "train.py.in"):
            ast.parse(text, filename=name)
    with pytest.raises(AssertionError, match="unfilled"):
        scaffold._render("plugin.yaml.in", {k: v for k, v in values.items() if k != "PLUGIN_CODE"})


def test_new_refuses_a_non_empty_folder(tmp_path, capsys):
    target = tmp_path / "proj"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    assert main(["new", str(target)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    # a file in the way is refused too
    assert main(["new", str(target / "notes.txt")]) == 2


def test_new_with_force_never_overwrites(tmp_path, capsys):
    target = tmp_path / "proj"
    (target / "plugins" / "Kept").mkdir(parents=True)
    mine = {"README.md": "my readme\n", "SConstruct": "# my build\n",
            "plugins/Kept/model.py": (EXAMPLE / "model.py").read_text()}
    for rel, text in mine.items():
        (target / rel).write_text(text)
    assert main(["new", str(target), "--name", "Kept", "--force"]) == 0
    out = capsys.readouterr().out
    for rel, text in mine.items():
        assert (target / rel).read_text() == text, rel
        assert f"kept  {rel}" in out
    for rel in (".gitignore", "train.py", "plugins/Kept/plugin.yaml", "plugins/Kept/checkpoint.pt"):
        assert (target / rel).is_file() and f"wrote {rel}" in out
    # the checkpoint was made from the kept factory (the user's model): it loads into it strictly
    from adac.frontend.flamo import load_model

    load_model(load_manifest(target / "plugins" / "Kept" / "plugin.yaml"))


def test_new_from_an_existing_factory_and_checkpoint(tmp_path, capsys):
    target = tmp_path / "from_mine"
    ck = tmp_path / "trained.pt"
    shutil.copy(EXAMPLE / "checkpoint.pt", ck)
    shutil.copy(EXAMPLE / "model.py", tmp_path / "fdn.py")
    assert main(["new", str(target), "--name", "Mine", "--factory", f"{tmp_path / 'fdn.py'}:build_model",
                 "--checkpoint", str(ck), "--manufacturer", "Acme Audio"]) == 0
    plugin = target / "plugins" / "Mine"
    manifest = load_manifest(plugin / "plugin.yaml")
    assert manifest.factory == "fdn.py:build_model"
    assert manifest.identity["manufacturer"] == "Acme Audio" and manifest.identity["manufacturer_code"] == "Acme"
    assert (plugin / "trained.pt").read_bytes() == ck.read_bytes()
    assert (plugin / "fdn.py").read_text() == (EXAMPLE / "model.py").read_text()
    assert not (plugin / "model.py").exists()
    train = (target / "train.py").read_text()
    assert '"fdn.py:build_model"' in train and 'PLUGIN / "trained.pt"' in train
    capsys.readouterr()
    # mistakes: one line each, exit 2, nothing written
    for argv, message in (
        (["--factory", f"{tmp_path / 'fdn.py'}:no_such"], "no top-level function 'no_such'"),
        (["--factory", f"{tmp_path / 'missing.py'}:build_model"], "is not a file"),
        (["--factory", "fdn.py"], "expected file.py:function"),
        (["--checkpoint", str(ck)], "--checkpoint needs --factory"),
        (["--factory", f"{tmp_path / 'fdn.py'}:build_model", "--checkpoint", str(tmp_path / "nope.pt")], "not a file"),
    ):
        assert main(["new", str(tmp_path / "bad"), *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
        assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """`adac new` + `scons STEPS=ir,dsp,cert`, as a user runs them, outside the repository."""
    base = tmp_path_factory.mktemp("scaffold")
    new = subprocess.run([sys.executable, "-m", "adac", "new", "myproj", "--name", "Fresh"], cwd=base,
                         capture_output=True, text=True, env=_env())
    assert new.returncode == 0, new.stderr
    root = base / "myproj"
    build = subprocess.run([sys.executable, "-m", "SCons", "-Q", "STEPS=ir,dsp,cert"], cwd=root,
                           capture_output=True, text=True, env=_env())
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return root, new.stdout, build.stdout


def test_new_project_builds_ir_dsp_and_certificate(project, faust_available):
    root, new_out, build_out = project
    assert sorted(p.name for p in root.iterdir()) == [".gitignore", ".sconsign.dblite", "README.md", "SConstruct",
                                                      "build", "plugins", "train.py"]
    assert "/build/" in (root / ".gitignore").read_text()
    readme = (root / "README.md").read_text()
    for command in ("python3 train.py", "scons", "adac render plugins/Fresh/plugin.yaml"):
        assert command in readme
    assert "next:" in new_out and "python3 train.py" in new_out
    out = root / "build" / "Fresh"
    for step in ("ir", "dsp", "cert"):
        assert f"adac {step}" in build_out
    ir = json.loads((out / "Fresh.json").read_text())
    assert ir["fs"] == FS
    assert json.loads((out / "Fresh.cert.json").read_text())["verdict"] == "certified-stable"
    compiled = subprocess.run(["faust", "-o", str(root / "build" / "Fresh.cpp"), str(out / "Fresh.dsp")],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    # the SConstruct loaded adac's tool from the package: nothing was copied into the project
    assert not (root / "site_scons").exists()
    assert "scons_toolpath()" in (root / "SConstruct").read_text()


def test_new_project_rebuilds_after_training(project):
    root, _, _ = project
    again = subprocess.run([sys.executable, "-m", "SCons", "STEPS=ir,dsp,cert"], cwd=root, capture_output=True,
                           text=True, env=_env())
    assert again.returncode == 0 and "is up to date" in again.stdout, again.stdout + again.stderr
    checkpoint = root / "plugins" / "Fresh" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    train = subprocess.run([sys.executable, "train.py", "--steps", "3"], cwd=root, capture_output=True, text=True,
                           env=_env())
    assert train.returncode == 0, train.stderr
    assert checkpoint.read_bytes() != before
    rebuilt = subprocess.run([sys.executable, "-m", "SCons", "-Q", "STEPS=ir,dsp,cert"], cwd=root,
                             capture_output=True, text=True, env=_env())
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "adac ir" in rebuilt.stdout


@pytest.mark.juce
def test_new_project_builds_a_vst3(project):
    """The whole default target: JUCE project and bundles, in the JUCE build tree this repository's plugins use
    (JUCE_BUILD: one JUCE modules library for every plugin, host and project of the test run)."""
    root, _, _ = project
    tree = Path(__file__).resolve().parent.parent / "build" / "juce-build"
    build = subprocess.run([sys.executable, "-m", "SCons", "-Q", "JOBS=2", f"JUCE_BUILD={tree}"], cwd=root,
                           capture_output=True, text=True, env=_env())
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    listing = json.loads((root / "build" / "Fresh" / "Fresh.bundles.json").read_text())
    vst3 = root / "build" / "Fresh" / "bundles" / "Fresh.vst3"
    assert vst3.is_dir(), listing
    assert list(vst3.rglob("*.so")), "no plugin binary in the bundle"
    assert (tree / "plugins" / "Fresh").is_dir()  # built in the shared tree, against its JUCE modules library


# ------------------------------------------------------------------------------------------ adac doctor

def test_doctor_finds_the_toolchain(capsys):
    code = main(["doctor", "--json"])
    found = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert set(found) == {"faust", "libfaust", "JUCE", "cmake", "ninja", "C++ compiler", "SCons", "torch", "FLAMO"}
    assert code == 0, [c for c in found.values() if not c["found"]]  # scripts/setup.sh installs them all
    version = subprocess.run(["faust", "--version"], capture_output=True, text=True).stdout
    assert found["faust"]["version"] in version
    assert found["torch"]["version"] == torch.__version__


def test_doctor_says_how_to_install_what_is_missing(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**_env(), "PATH": str(empty), "LD_LIBRARY_PATH": "", "JUCE_DIR": ""}
    env.pop("ADAC_FAUST", None)
    env.pop("CXX", None)
    proc = subprocess.run([sys.executable, "-m", "adac", "doctor"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for tool, package in (("faust", "faust"), ("cmake", "cmake"), ("ninja", "ninja-build"), ("C++ compiler", "g++")):
        at = next(i for i, line in enumerate(lines) if line.split()[:2] == ["MISSING", tool.split()[0]])
        assert "install:" in lines[at + 1] and package in lines[at + 1], lines[at:at + 2]
    assert lines[-1].startswith("missing: faust")
    assert any(line.split()[:2] == ["ok", "torch"] for line in lines)


# ------------------------------------------------------------------------------- verify, render, plot

def _small_fdn():
    torch.manual_seed(3)
    common = dict(nfft=2 ** 12, alias_decay_db=0.0, device="cpu")
    delays = dsp.parallelDelay(size=(2,), max_len=200, isint=True, fs=FS, **common)
    delays.assign_value(delays.sample2s(torch.tensor([113.0, 157.0])))
    feedback = dsp.Matrix(size=(2, 2), matrix_type="orthogonal", **common)
    attenuation = dsp.parallelGain(size=(2,), **common)
    attenuation.assign_value(torch.tensor([0.6, 0.6]))
    return system.Shell(system.Recursion(delays, system.Series(feedback, attenuation)))


@pytest.fixture(scope="module")
def ir_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tools") / "small.json"
    path.write_text(json.dumps(adac.flamo_to_json(_small_fdn(), FS, name="small")))
    return path


def test_verify_prints_a_table_and_exits_by_tolerance(ir_file, capsys, faust_available):
    assert main(["verify", str(ir_file), "--samples", "2048"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("float32", "double"))]
    assert len(rows) == 8 and all(r[-1] == "ok" for r in rows)  # 2 outputs x 2 inputs x 2 precisions
    assert {(r[1], r[2]) for r in rows} == {("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")}
    # a tolerance float32 cannot meet: the status says so
    assert main(["verify", str(ir_file), "--samples", "2048", "--precision", "float32", "--tolerance", "1e-12"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "out of tolerance" in out


def test_render_processes_a_sound_file_with_controls(ir_file, tmp_path, capsys, faust_available):
    rng = np.random.default_rng(0)
    dry = rng.standard_normal(3000) * 0.1
    soundfile.write(tmp_path / "dry.wav", dry, FS, subtype="FLOAT")
    wet = tmp_path / "out" / "wet.wav"
    base = ["render", str(ir_file), "--in", str(tmp_path / "dry.wav"), "--out", str(wet), "--tail", "0.01",
            "--controls", "dry_wet"]
    # fully dry: the mono input comes out on both channels, untouched (the setting reached the DSP)
    assert main([*base, "--set", "/adac/dry_wet=0"]) == 0
    out, rate = soundfile.read(wet, always_2d=True)
    assert rate == FS and out.shape == (3000 + 480, 2)
    np.testing.assert_allclose(out[:3000, 0], dry, atol=1e-6)
    np.testing.assert_allclose(out[:3000, 1], dry, atol=1e-6)
    # fully wet: the FDN's output, which differs from the dry signal and matches a render of the IR
    assert main([*base, "--set", "/adac/dry_wet=1"]) == 0
    out_wet, _ = soundfile.read(wet, always_2d=True)
    assert np.abs(out_wet[:3000, 0] - dry).max() > 0.05
    from adac.backends.faust.render import render_signal

    expected = render_signal(adac.json_to_faust(json.loads(ir_file.read_text())), FS,
                             np.repeat(np.concatenate([dry, np.zeros(480)])[:, None], 2, axis=1))
    np.testing.assert_allclose(out_wet, expected, atol=1e-6)
    capsys.readouterr()
    # mistakes
    assert main([*base, "--set", "dry_wet=1"]) == 2
    assert "expected /address=number" in capsys.readouterr().err
    assert main([*base, "--set", "/adac/rt60=1.0"]) == 2  # not enabled (--controls dry_wet only)
    assert "has no rt60 control" in capsys.readouterr().err
    soundfile.write(tmp_path / "dry44.wav", dry, 44100)
    assert main(["render", str(ir_file), "--in", str(tmp_path / "dry44.wav"), "--out", str(wet)]) == 2
    assert "44100 Hz" in capsys.readouterr().err


def test_plot_writes_a_png(ir_file, tmp_path, capsys, faust_available):
    out = tmp_path / "plot.png"
    assert main(["plot", str(ir_file), "--out", str(out), "--seconds", "0.2"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rt60 slider" in capsys.readouterr().out
