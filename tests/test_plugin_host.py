"""The shipped example, built by the README's main command path (`scons plugins/AdacFDN`), loaded in a real host.

pedalboard loads the VST3 headless; its impulse response per input channel is
compared with FLAMO's for the same checkpoint, sample by sample.
"""
from pathlib import Path

import numpy as np
import pytest

from adac.frontend.flamo.reference import flamo_reference
from adac.ir import load_ir
from conftest import FLOAT32_TOL

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "AdacFDN"

pytestmark = [pytest.mark.juce, pytest.mark.usefixtures("faust_available")]


def test_all_linux_formats_are_built(example_bundles):
    bundles = example_bundles["bundles"]
    assert set(bundles) == {"VST3", "LV2", "Standalone"}
    vst3 = Path(bundles["VST3"]["path"])
    assert (vst3 / "Contents" / "x86_64-linux" / "AdacFDN.so").is_file()
    lv2 = Path(bundles["LV2"]["path"])
    assert (lv2 / "manifest.ttl").is_file() and (lv2 / "libAdacFDN.so").is_file()
    standalone = Path(bundles["Standalone"]["path"])
    assert standalone.is_file() and standalone.stat().st_mode & 0o111


def _load(bundles):
    import pedalboard

    return pedalboard.load_plugin(str(Path(bundles["bundles"]["VST3"]["path"])))


def test_controls_are_host_parameters(example_bundles):
    from adac.analysis.controls import normalise_controls
    from adac.build.manifest import load_manifest

    plugin = _load(example_bundles)
    expected = normalise_controls(load_manifest(ROOT / "plugins" / "AdacFDN" / "plugin.yaml").controls, load_ir(OUT / "AdacFDN.json"))
    keys = {p.name: key for key, p in plugin.parameters.items()}  # pedalboard's keys carry units (rt60_s)
    params = {name: plugin.parameters[keys[name]] for name in ("rt60", "dry_wet", "pre_delay")}
    for name, param in params.items():
        assert param.min_value == pytest.approx(expected[name]["min"], rel=1e-6), name
        assert param.max_value == pytest.approx(expected[name]["max"], rel=1e-6), name
        assert getattr(plugin, keys[name]) == pytest.approx(expected[name]["default"], abs=1e-3), name


def test_a_parameter_set_in_the_host_changes_the_sound_like_the_native_render(example_bundles):
    from adac.backends.faust.render import render_impulse_responses

    plugin = _load(example_bundles)
    plugin.dry_wet = 0.5
    n = 48000
    impulse = np.zeros((2, n), dtype=np.float32)
    impulse[0, 0] = 1.0
    rendered = plugin.process(impulse, 48000, buffer_size=512, reset=True)
    code = (OUT / "AdacFDN.dsp").read_text()
    native = render_impulse_responses(code, 48000, n, params={"/adac/dry_wet": float(plugin.dry_wet)})[:, :, 0].T
    assert abs(plugin.dry_wet - 0.5) < 1e-3
    assert np.abs(rendered - native).max() <= FLOAT32_TOL * np.abs(native).max()
    plugin.dry_wet = 1.0


def test_vst3_in_pedalboard_sounds_like_flamo(example_bundles):
    plugin = _load(example_bundles)
    ir = load_ir(OUT / "AdacFDN.json")
    n = 48000 * 2
    reference, _ = flamo_reference(ir, n, 1 << 19)
    peak = np.abs(reference).max()
    for channel in range(ir["input_channels"]):
        impulse = np.zeros((ir["input_channels"], n), dtype=np.float32)
        impulse[channel, 0] = 1.0
        rendered = plugin.process(impulse, 48000, buffer_size=512, reset=True)
        error = np.abs(rendered - reference[:, :, channel].T).max()
        assert error <= FLOAT32_TOL * peak, (channel, error / peak)
        assert np.abs(rendered[:, 48000:]).max() > 1e-6 * peak  # the tail is there: not a dry-only plugin
