"""Plugins that are the trained model at every host sample rate (docs/sample_rate.md).

Unit level: the re-lowering rules (adac.ir.rate) against expectations computed here with numpy/scipy.
Host level: the shipped example built in both modes (relowered: `scons plugins/AdacFDN`, as the README
builds it; resample: the same model under another name, built by the same steps into the shared JUCE
tree), loaded as a VST3 in pedalboard at 44.1, 48, 88.2 and 96 kHz and compared with FLAMO's response
at the model's rate resampled to the host's (scipy.signal.resample_poly, scaled by fs0/fs: a unit
impulse at fs carries fs0/fs of the one at fs0).
"""
from math import gcd
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from adac.analysis.octaves import at_rate, band_limited, compare
from adac.ir import load_ir, validate_ir
from adac.ir.rate import band_limit, map_root, map_section, relower
from conftest import FLOAT32_TOL, build_example_variant
from flamo_models import FS, SINGLE_KINDS, fdn, single

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "plugins" / "AdacFDN"
OUT = ROOT / "build" / "AdacFDN"
RESAMPLED = "AdacFDNResample"
WORK = ROOT / "build" / "tests" / "sample_rate"
HOST_RATES = (44100, 88200, 96000)
# the issue's targets
T30_TOLERANCE, ENERGY_DB, CENTROID_TOLERANCE = 0.05, 0.5, 0.03
SAMPLE_TOLERANCE, BAND = 1e-3, 0.9  # resample mode: x peak, below BAND x the lower Nyquist


# ------------------------------------------------------------------------------------------- unit level

def test_a_root_keeps_its_time_constant_and_frequency_in_seconds_and_hertz():
    fs0, fs = 48000, 96000
    tau, f = 0.002, 3000.0  # a pole decaying by 1/e in 2 ms, ringing at 3 kHz
    pole = np.exp(-1 / (tau * fs0)) * np.exp(2j * np.pi * f / fs0)
    mapped = map_root(pole, fs / fs0)
    assert abs(mapped) == pytest.approx(np.exp(-1 / (tau * fs)), rel=1e-12)
    assert np.angle(mapped) == pytest.approx(2 * np.pi * f / fs, rel=1e-12)
    assert map_root(-0.5, 2.0) == pytest.approx(-(0.5 ** 0.5))  # a Nyquist root stays on the negative axis


@pytest.mark.parametrize("fs", [44100, 88200, 96000])
@pytest.mark.parametrize("design", ["lowpass", "highpass", "peak"])
def test_a_section_keeps_its_gain_in_hertz(design, fs):
    fs0 = 48000
    if design == "peak":
        b, a = signal.iirpeak(2000, 4, fs=fs0)
        b, a = b + 0.5 * a, a  # a resonance on a flat floor
    else:
        b, a = signal.butter(2, 5000, btype=design, fs=fs0)
    section = np.concatenate([b, a]) / a[0]
    mapped = map_section(section, fs / fs0)
    freqs = np.linspace(20, 0.8 * min(fs, fs0) / 2, 400)
    _, before = signal.freqz(section[:3], section[3:], worN=freqs, fs=fs0)
    _, after = signal.freqz(mapped[:3], mapped[3:], worN=freqs, fs=fs)
    assert mapped[3] == 1.0 and np.all(np.abs(np.roots(mapped[3:])) < 1)
    # where it passes (above half its peak) within 0.01 dB: a loop's decay hangs on those gains;
    # elsewhere within 6 % of its peak (the fit weighs the gain: a stop band matters little in a loop)
    passes = np.abs(before) > 0.5 * np.abs(before).max()
    error_db = 20 * np.log10(np.abs(after[passes]) / np.abs(before[passes]))
    assert np.abs(error_db).max() < 0.01, np.abs(error_db).max()
    assert np.abs(np.abs(after) - np.abs(before)).max() < 0.06 * np.abs(before).max()


@pytest.fixture(scope="module")
def example_ir():
    """The example's IR, built here by the IR step (independent of build/AdacFDN)."""
    from adac.build import steps
    from adac.build.manifest import load_manifest

    WORK.mkdir(parents=True, exist_ok=True)
    return load_ir(steps.ir_step(load_manifest(EXAMPLE / "plugin.yaml"), WORK / "AdacFDN.json"))


def test_delays_scale_in_seconds_and_fdn_gains_keep_their_decay_per_second(example_ir):
    ir, fs = example_ir, 44100
    lowered = validate_ir(relower(ir, fs))
    loop = ir["graph"]["children"][0]["children"][1]
    new_loop = lowered["graph"]["children"][0]["children"][1]
    old_d = np.asarray(loop["feedforward"]["samples"])
    new_d = np.asarray(new_loop["feedforward"]["samples"])
    assert np.array_equal(new_d, np.round(old_d * fs / 48000))
    old_g = np.asarray(loop["feedback"]["children"][1]["gains"])
    new_g = np.asarray(new_loop["feedback"]["children"][1]["gains"])
    # dB per second of each line: 20 log10(g) per pass, fs / d passes per second
    np.testing.assert_allclose(20 * np.log10(new_g) * fs / new_d, 20 * np.log10(old_g) * 48000 / old_d, rtol=1e-9)


def test_fir_taps_are_placed_by_time_and_the_model_rate_is_left_alone():
    ir = {"format": "adac-ir", "version": "1.0", "name": "fir", "fs": 48000, "input_channels": 1,
          "output_channels": 1, "flamo": {"version": "0", "nfft": 8, "alias_decay_db": 0, "dtype": "float64", "shell": None},
          "graph": {"id": "n1", "kind": "fir", "path": "taps", "in": 1, "out": 1, "diagonal": True,
                    "taps": [[1.0], [0.0], [0.0], [0.5], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [-0.25]]}}
    assert relower(ir, 48000) is ir
    taps = np.asarray(relower(ir, 96000)["graph"]["children"][1]["taps"])[:, 0]  # after the band limit
    assert np.flatnonzero(taps).tolist() == [0, 6, 20] and taps[[0, 6, 20]].tolist() == [1.0, 0.5, -0.25]


def test_above_the_model_rate_nothing_passes_beyond_its_nyquist():
    node = band_limit(2, 48000, 96000, "n9")
    sos = np.asarray(node["sections"])[:, :, 0]
    _, h = signal.sosfreqz(sos, worN=np.array([1000.0, 20000.0, 24000.0, 30000.0]), fs=96000)
    gain_db = 20 * np.log10(np.abs(h))
    assert np.abs(gain_db[:2]).max() < 0.02 and gain_db[3] < -90


@pytest.mark.parametrize("kind", SINGLE_KINDS)
def test_every_kind_of_the_zoo_lowers_to_a_valid_document_and_code(kind):
    from adac.backends.faust import json_to_faust, rate_process
    from adac.frontend.flamo import flamo_to_json

    ir = flamo_to_json(single(kind), FS, name=kind)
    for fs in (44100, 96000):
        validate_ir(relower(ir, fs))
    code = json_to_faust(ir, rates=(44100, 96000))
    assert f"{rate_process(44100)} = adac_model with {{" in code and f"{rate_process(96000)} = " in code


def test_an_fdn_is_certified_at_every_rate_it_is_lowered_for():
    from adac.certificate import certify_rates, gate
    from adac.frontend.flamo import flamo_to_json

    certificate = certify_rates(flamo_to_json(fdn(), FS, name="fdn"), None, (44100, 88200, 96000))
    assert sorted(certificate["rates"]) == ["44100", "88200", "96000"]
    assert all(c["verdict"] == "certified-stable" and c["fs"] == int(r) for r, c in certificate["rates"].items())
    gate(certificate)


# ------------------------------------------------------------------------------------------- host level

@pytest.fixture(scope="module")
def relowered(example_bundles):
    """The shipped example, as the README builds it (its manifest: sample_rate.mode relowered)."""
    return example_bundles


@pytest.fixture(scope="module")
def resampled(example_ir, example_bundles):
    """The same model in resample mode, under another name, by the build steps, in the shared JUCE tree."""
    return build_example_variant(WORK, RESAMPLED, WORK / "AdacFDN.json", plugin_code="Afdr",
                                 display_name="adac FDN Reverb (resampling)",
                                 sample_rate={"mode": "resample", "rates": [44100, 48000, 88200, 96000]})


def _load(bundles):
    import pedalboard

    return pedalboard.load_plugin(str(Path(bundles["bundles"]["VST3"]["path"])))


@pytest.fixture(scope="module")
def model(example_ir):
    """The IR and FLAMO's impulse responses at the model's rate, (n, out, in)."""
    from adac.frontend.flamo.reference import flamo_reference

    ir = example_ir
    reference, _ = flamo_reference(ir, ir["fs"] * 3, 1 << 19)
    return ir, reference


def offsets(fs0: int, fs: int, at_least: int = 1000) -> tuple[int, int]:
    """``(host samples, model samples)``: one instant on both sample grids, at least ``at_least`` host samples in."""
    g = gcd(fs, fs0)
    k = -(-at_least // (fs // g))
    return k * fs // g, k * fs0 // g


def impulse_responses(plugin, n_in: int, n: int, fs: int, offset: int = 0) -> np.ndarray:
    """(n, out, in): one unit impulse per input at ``offset``; pedalboard compensates the latency the plugin
    reports (it drops that many samples: the input is padded). pedalboard reads the latency a rate change sets
    on the run after the change: a short run at ``fs`` goes first."""
    plugin.process(np.zeros((n_in, 1024), dtype=np.float32), fs, buffer_size=512, reset=True)
    out = []
    for channel in range(n_in):
        impulse = np.zeros((n_in, n + 4096), dtype=np.float32)
        impulse[channel, offset] = 1.0
        rendered = plugin.process(impulse, fs, buffer_size=512, reset=True)
        assert rendered.shape[1] >= n
        out.append(rendered[:, :n].T)
    return np.stack(out, axis=-1)


@pytest.mark.parametrize("fs", HOST_RATES)
def test_relowered_plugin_is_the_model_at_the_host_rate(relowered, model, fs):
    ir, reference = model
    expected = at_rate(reference, ir["fs"], fs)
    plugin = _load(relowered)
    rendered = impulse_responses(plugin, ir["input_channels"], expected.shape[0], fs)
    assert plugin.reported_latency_samples == 0
    c = compare(expected, rendered, fs)
    assert max(abs(v) for v in c["t30"].values()) <= T30_TOLERANCE, c["t30"]
    assert max(abs(v) for v in c["energy_db"].values()) <= ENERGY_DB, c["energy_db"]
    assert abs(c["centroid"]) <= CENTROID_TOLERANCE, c["centroid"]


def test_relowered_plugin_equals_flamo_at_the_model_rate_after_another_rate(relowered, model):
    ir, reference = model
    plugin = _load(relowered)
    impulse_responses(plugin, ir["input_channels"], 4096, 96000)  # the host changes its rate, then back
    rendered = impulse_responses(plugin, ir["input_channels"], reference.shape[0], ir["fs"])
    assert np.abs(rendered - reference).max() <= FLOAT32_TOL * np.abs(reference).max()


def test_relowered_plugin_refuses_a_rate_it_has_no_lowering_for(relowered, model, capfd):
    ir, _ = model
    plugin = _load(relowered)
    noise = np.random.default_rng(1).standard_normal((ir["input_channels"], 8000)).astype(np.float32)
    capfd.readouterr()
    rendered = plugin.process(noise, 32000, buffer_size=512, reset=True)
    np.testing.assert_array_equal(rendered, noise)  # bypassed: the input passes through
    assert "refused: no certified lowering of the model for 32000 Hz" in capfd.readouterr().err  # JUCE's log: stderr
    again = plugin.process(noise, 44100, buffer_size=512, reset=True)
    assert np.abs(again - noise).max() > 0.1  # an accepted rate: the reverb is back


@pytest.mark.parametrize("fs", HOST_RATES)
def test_resampling_plugin_matches_the_model_sample_by_sample(resampled, model, fs):
    ir, reference = model
    # the impulse a little after the start on both grids: a band-limited pulse rings before it, too
    host_offset, model_offset = offsets(ir["fs"], fs)
    expected = at_rate(np.pad(reference, ((model_offset, 0), (0, 0), (0, 0))), ir["fs"], fs)
    plugin = _load(resampled)
    rendered = impulse_responses(plugin, ir["input_channels"], expected.shape[0], fs, host_offset)
    assert plugin.reported_latency_samples > 0
    edge = BAND * min(fs, ir["fs"]) / 2
    # the first half, away from the end the truncated reference rings at
    kept = slice(0, expected.shape[0] // 2)
    error = np.abs(band_limited(rendered, fs, edge) - band_limited(expected, fs, edge))[kept].max()
    assert error <= SAMPLE_TOLERANCE * np.abs(expected).max(), error / np.abs(expected).max()


def test_resampling_plugin_is_bit_for_bit_the_model_at_its_rate(resampled, relowered, model):
    ir, reference = model
    plugin = _load(resampled)
    impulse_responses(plugin, ir["input_channels"], 4096, 44100)  # resampling, then the model's own rate again
    rendered = impulse_responses(plugin, ir["input_channels"], reference.shape[0], ir["fs"])
    assert plugin.reported_latency_samples == 0
    assert np.abs(rendered - reference).max() <= FLOAT32_TOL * np.abs(reference).max()
    # no resampler at the model's rate: the very samples of the plugin without one (its model-rate class)
    direct = impulse_responses(_load(relowered), ir["input_channels"], reference.shape[0], ir["fs"])
    np.testing.assert_array_equal(rendered, direct)


def test_the_standalone_dsp_states_its_rate_and_carries_each_lowering(relowered, model):
    """Other FAUST targets: `process` is exact at the model's rate, `adac_process_<rate>` (faust -pn) at another;
    rendered by FAUST, a lowering is what the plugin plays at that rate."""
    from adac.backends.faust import rate_process
    from adac.backends.faust.render import render_impulse_responses

    ir, _ = model
    code = (OUT / "AdacFDN.dsp").read_text()
    assert f'declare adac_exact_rate "{ir["fs"]}";' in code
    assert 'declare adac_rates "44100 48000 88200 96000";' in code
    fs, n = 88200, 88200
    native = render_impulse_responses(code, fs, n, extra_flags=("-pn", rate_process(fs)))
    rendered = impulse_responses(_load(relowered), ir["input_channels"], n, fs)
    assert np.abs(rendered - native).max() <= FLOAT32_TOL * np.abs(native).max()


def test_controls_keep_their_meaning_in_seconds_and_milliseconds(relowered, model):
    from adac.analysis.rt60 import decay_time

    ir, _ = model
    plugin = _load(relowered)
    keys = {p.name: key for key, p in plugin.parameters.items()}
    defaults = {name: getattr(plugin, keys[name]) for name in ("rt60", "pre_delay")}
    setattr(plugin, keys["rt60"], 1.0)
    setattr(plugin, keys["pre_delay"], 20.0)
    try:
        measured = {}
        for fs in (48000, 96000):
            # a second of silence first: the controls glide from their defaults after a reset
            silence = np.zeros((ir["input_channels"], fs), dtype=np.float32)
            plugin.process(silence, fs, buffer_size=512, reset=True)
            plugin.process(silence, fs, buffer_size=512, reset=False)
            impulse = np.zeros((ir["input_channels"], 3 * fs), dtype=np.float32)
            impulse[0, 0] = 1.0
            h = plugin.process(impulse, fs, buffer_size=512, reset=False).T
            onset = int(np.argmax(np.abs(h).max(axis=1) > 1e-3))
            measured[fs] = (decay_time(h, fs), onset / fs)
        (t48, onset48), (t96, onset96) = measured[48000], measured[96000]
        assert t48 == pytest.approx(1.0, rel=0.05)
        assert t96 == pytest.approx(t48, rel=0.02)  # the same reverberation time in seconds
        assert onset48 == pytest.approx(0.020, abs=2 / 48000) and onset96 == pytest.approx(0.020, abs=2 / 48000)
    finally:
        for name, value in defaults.items():
            setattr(plugin, keys[name], value)
