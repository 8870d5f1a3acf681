"""The native backend in the plugin: the manifest's ``backend: native | faust | auto`` (docs/build.md, issue 16).

* ``backend: native``: the shipped example's model under another name (``AdacFDNNative``, VST3 only), built by the
  build steps in the shared JUCE tree (build/juce-build) and loaded in pedalboard, sounds like FLAMO at the model's
  rate and like the FAUST lowering at 88.2 kHz (the lowering the FAUST plugin plays there: test_sample_rate.py), and
  has the host parameters FAUST describes for the .dsp (``faust -json``).
* ``backend: native`` on a model the kernel refuses: ``scons`` stops at the JUCE step with one line naming the
  manifest and the field, exit 2, and writes no JUCE project; the .dsp and the certificate are built.
* ``backend: auto`` (the shipped example): ``build/AdacFDN/backend.json`` records both figures and the choice, and
  the plugin is built with the backend chosen.
"""
import json
import math
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system

from adac.backends.faust import json_to_faust, rate_process
from adac.backends.faust.render import render_impulse_responses
from adac.backends.juce import export_juce
from adac.backends.juce.project import NativeModel
from adac.backends.native import NativeUnsupported
from adac.backends.native.timing import PLUGIN_CXXFLAGS, choose_backend
from adac.build.manifest import load_manifest
from adac.common.toolchain import eigen_include
from adac.frontend.flamo import flamo_to_json
from adac.frontend.flamo.reference import flamo_reference
from adac.ir import load_ir
from conftest import FLOAT32_TOL, build_example_variant
from flamo_models import FS, fdn, single
from test_juce_plugin import IDENTITY
from test_plugin_host import _load
from test_sample_rate import impulse_responses

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "plugins" / "AdacFDN"
OUT = ROOT / "build" / "AdacFDN"
WORK = ROOT / "build" / "tests" / "native_plugin"
NATIVE = "AdacFDNNative"
LOWERED_RATE = 88200

pytestmark = pytest.mark.usefixtures("faust_available")


# ------------------------------------------------------------------------------------ backend: native

@pytest.fixture(scope="module")
def native_plugin(example_bundles):
    """The example's model with ``backend: native``, by the build steps, in the shared JUCE tree: its listing."""
    return build_example_variant(WORK, NATIVE, OUT / "AdacFDN.json", plugin_code="Afdv",
                                 display_name="adac FDN Reverb (native)", backend="native")


@pytest.mark.juce
def test_the_native_project_holds_the_kernel_and_says_so(native_plugin):
    project = WORK / NATIVE / "out" / "juce"
    assert json.loads((project / "adac_project.json").read_text())["backend"] == "native"
    assert native_plugin["backend"] == "native"
    classes = (project / "FaustDsp.cpp").read_text()
    # one class per accepted rate, each the kernel's (FAUST's classes carry no such declaration)
    assert classes.count('declare("adac_backend", "native")') == 4, "a class per rate of the manifest"


@pytest.mark.juce
def test_native_plugin_sounds_like_flamo_at_the_model_rate(native_plugin):
    plugin = _load(native_plugin)
    ir = load_ir(OUT / "AdacFDN.json")
    n = ir["fs"] * 2
    reference, _ = flamo_reference(ir, n, 1 << 19)
    rendered = impulse_responses(plugin, ir["input_channels"], n, ir["fs"])
    peak = np.abs(reference).max()
    error = np.abs(rendered - reference).max()
    assert error <= FLOAT32_TOL * peak, error / peak
    assert np.abs(rendered[ir["fs"]:]).max() > 1e-6 * peak  # the tail is there: not a dry-only plugin


@pytest.mark.juce
def test_native_plugin_plays_the_model_lowered_for_another_rate(native_plugin):
    """At 88.2 kHz the plugin plays the model lowered again for that rate: what FAUST renders of the .dsp's
    ``adac_process_88200`` (the FAUST plugin plays that lowering: test_sample_rate.py)."""
    ir = load_ir(OUT / "AdacFDN.json")
    fs, n = LOWERED_RATE, LOWERED_RATE
    faust = render_impulse_responses((OUT / "AdacFDN.dsp").read_text(), fs, n, extra_flags=("-pn", rate_process(fs)))
    rendered = impulse_responses(_load(native_plugin), ir["input_channels"], n, fs)
    peak = np.abs(faust).max()
    error = np.abs(rendered - faust).max()
    assert error <= FLOAT32_TOL * peak, error / peak
    at_model_rate = render_impulse_responses((OUT / "AdacFDN.dsp").read_text(), fs, n)  # the delays in samples
    assert np.abs(rendered - at_model_rate).max() > 1e-2 * peak, "the plugin did not change its model with the rate"


def _faust_widgets(dsp: Path, folder: Path) -> dict[str, dict]:
    """The widgets of a .dsp as FAUST describes them (``faust -json``): label -> its JSON item."""
    source = folder / dsp.name
    shutil.copy2(dsp, source)
    subprocess.run(["faust", "-json", "-I", str(ROOT / "faust"), source.name, "-o", "/dev/null"], cwd=folder,
                   check=True, capture_output=True)

    def walk(items):
        for item in items:
            yield from walk(item["items"]) if "items" in item else [item]

    return {item["label"]: item for item in walk(json.loads((folder / f"{source.name}.json").read_text())["ui"])}


@pytest.mark.juce
def test_native_plugin_has_the_parameters_of_the_faust_code(native_plugin, tmp_path):
    plugin = _load(native_plugin)
    widgets = _faust_widgets(OUT / "AdacFDN.dsp", tmp_path)
    assert set(widgets) == {"rt60", "dry_wet", "pre_delay"}
    params = {p.name: p for key, p in plugin.parameters.items() if key != "bypass"}  # JUCE's VST3 wrapper adds bypass
    assert set(params) == set(widgets)
    keys = {p.name: key for key, p in plugin.parameters.items()}
    for label, widget in widgets.items():
        param = params[label]
        assert param.min_value == pytest.approx(widget["min"], rel=1e-6), label
        assert param.max_value == pytest.approx(widget["max"], rel=1e-6), label
        assert getattr(plugin, keys[label]) == pytest.approx(widget["init"], abs=1e-3), label
        default = (widget["init"] - widget["min"]) / (widget["max"] - widget["min"])
        assert param.default_raw_value == pytest.approx(default, abs=1e-6), label
        unit = next((m["unit"] for m in widget.get("meta", []) if "unit" in m), "")
        assert (param.label or "") == unit, label


# ------------------------------------------------------------------------- backend: native, refused

REFUSED_MODEL = '''\
"""A model without a feedback loop: only FAUST realises it."""
from flamo.processor import dsp, system


def build_model(fs: int = 48000):
    return system.Shell(dsp.Gain(size=(1, 1), device="cpu"))
'''


def test_native_backend_on_a_model_without_a_kernel_loop_stops_the_build(tmp_path):
    plugins = tmp_path / "plugins"
    folder = plugins / "NoLoop"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(REFUSED_MODEL)
    torch.manual_seed(0)
    torch.save(system.Shell(dsp.Gain(size=(1, 1), device="cpu")).state_dict(), folder / "checkpoint.pt")
    (folder / "plugin.yaml").write_text(textwrap.dedent("""\
        name: NoLoop
        identity: {manufacturer: adac tests, manufacturer_code: Atst, plugin_code: Nolp, version: 1.0.0}
        model: {factory: model.py:build_model, checkpoint: checkpoint.pt}
        fs: 48000
        formats: [VST3]
        backend: native
        """))
    root = WORK / "refused"
    shutil.rmtree(root, ignore_errors=True)
    proc = subprocess.run(["scons", "-Q", f"PLUGINS={plugins}", f"BUILD_ROOT={root.relative_to(ROOT)}"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("adac: error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"adac: error: {folder / 'plugin.yaml'}: backend: native: "), errors[0]
    assert "Traceback" not in proc.stderr
    out = root / "NoLoop"
    assert (out / "NoLoop.dsp").is_file() and (out / "NoLoop.cert.json").is_file()  # built either way
    assert [p for p in (out / "juce").glob("**/*") if p.is_file()] == [], "no JUCE project file may be written"
    assert not (out / "NoLoop.bundles.json").exists()


# ------------------------------------------------------------------------------------- backend: auto

@pytest.mark.juce
def test_the_example_measures_both_backends_and_builds_the_faster(example_bundles):
    assert load_manifest(EXAMPLE / "plugin.yaml").backend == "auto"
    choice = json.loads((OUT / "backend.json").read_text())
    figures = choice["ns_per_sample"]
    assert set(figures) == {"faust", "native"}
    assert all(math.isfinite(v) and v > 0 for v in figures.values()), figures
    assert choice["backend"] == min(figures, key=figures.get), choice  # the faster one (nothing ties in ns)
    assert all(len(runs) == choice["rounds"] >= 5 for runs in choice["runs"].values())
    assert choice["block"] == 256 and choice["fs"] == 48000 and choice["machine"]["cpu"]
    # the plugin is built with it, and says so
    assert example_bundles["backend"] == choice["backend"]
    assert json.loads((OUT / "juce" / "adac_project.json").read_text())["backend"] == choice["backend"]
    native_classes = (OUT / "juce" / "FaustDsp.cpp").read_text().count('declare("adac_backend", "native")')
    assert native_classes == (4 if choice["backend"] == "native" else 0)


def test_auto_takes_faust_for_a_model_the_kernel_refuses_and_says_why():
    ir = flamo_to_json(single("Gain"), FS)
    choice = choose_backend(json_to_faust(ir), ir)
    assert choice["backend"] == "faust"
    assert choice["reason"].startswith("the native kernel cannot realise the model: ")
    assert "no loop the native kernel realises" in choice["reason"] and "ns_per_sample" not in choice


@pytest.mark.juce
def test_the_plugin_timing_uses_the_plugins_compiler_flags(example_bundles):
    """The timing programs are compiled as the JUCE build compiles the plugin's FaustDsp.cpp (its optimisation
    and code-generation flags, read from the build tree's compile_commands.json)."""
    commands = json.loads((ROOT / "build" / "juce-build" / "compile_commands.json").read_text())
    command = next(c["command"] for c in commands if c["file"] == str(OUT / "juce" / "FaustDsp.cpp"))
    words = command.split()
    codegen = [w for w in words if w.startswith(("-O", "-f", "-m", "-std"))]
    assert set(codegen) <= set(PLUGIN_CXXFLAGS), codegen
    assert {w for w in PLUGIN_CXXFLAGS if w.startswith(("-O", "-f", "-m"))} <= set(codegen)
    assert "-DNDEBUG=1" in words and "-DFAUSTFLOAT=float" in words


# ----------------------------------------------------------------------------- the project, no build

def test_a_native_project_holds_the_kernel_class_with_eigen_before_its_namespace(tmp_path):
    ir = flamo_to_json(fdn(4), FS)
    project = export_juce(NativeModel(ir), tmp_path / "proj", **IDENTITY,
                          sample_rate={"mode": "resample", "rates": [44100, 48000], "fs": FS})
    classes = (project / "FaustDsp.cpp").read_text()
    assert classes.count('declare("adac_backend", "native")') == 1  # resample mode: the model's class only
    prelude = classes.split("namespace adac_rate_")[0]
    assert "#include <Eigen/Core>" in prelude  # Eigen's templates cannot be declared inside a namespace
    cmake = (project / "CMakeLists.txt").read_text()
    assert f'target_include_directories(AdacJuceTest SYSTEM PRIVATE "{eigen_include()}")' in cmake
    assert (eigen_include() / "Eigen" / "Core").is_file()
    assert json.loads((project / "adac_project.json").read_text())["backend"] == "native"


def test_a_model_the_kernel_refuses_writes_no_project(tmp_path):
    with pytest.raises(NativeUnsupported, match="no loop the native kernel realises"):
        export_juce(NativeModel(flamo_to_json(single("Gain"), FS)), tmp_path / "proj", **IDENTITY)
    assert not (tmp_path / "proj").exists()
