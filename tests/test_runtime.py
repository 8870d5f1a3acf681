"""The C++ runtime (runtime/, adac.backends.runtime): the IR played as data, proven against FLAMO and the FAUST class.

* Its kind table is the schema's.
* Every model of the test zoo, rendered by the runtime in float and double, against FLAMO's own response
  (float within 1e-6 x peak, double within 1e-9, as the FAUST backend): nothing is compiled per model.
* Random FLAMO models (the property tests' strategy) against FLAMO; random schema-valid IR documents (every kind,
  extreme values) either refused with a message or played with their declared channels, and where their float64
  simulation (adac.analysis.simulate, written independently in Python) is finite, equal to it.
* The macro-controls, set before and moved while rendering, against the FAUST backend's class.
* A block size that cuts every loop's blocks anywhere gives the same output.
"""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system
from hypothesis import given, settings

import adac
from adac.analysis.simulate import simulate
from adac.backends.faust import json_to_faust
from adac.backends.faust.render import build_renderer, impulse_responses, process_signal
from adac.backends.runtime import build_runtime_renderer, document_renderer, runtime_document, runtime_kinds
from adac.common.errors import AdacError
from adac.ir import schema_kinds
from conftest import DOUBLE_TOL, FLOAT32_TOL
from flamo_models import CPU, FS, SINGLE_KINDS, delay_lines, fdn, line_gains, single
from ir_strategies import ir_documents
from test_properties import RANDOM_FLOAT32_TOL, SETTINGS, flamo_models

pytestmark = pytest.mark.usefixtures("faust_available")

NFFT = {"parallelPEQ": 1 << 18, "PEQ": 1 << 17}
RANDOM_MODELS = 30
RANDOM_DOCUMENTS = 150
RANDOM_SIMULATION_TOL = 1e-6


def assert_equivalent(report, float32_tol=FLOAT32_TOL, double_tol=DOUBLE_TOL):
    assert report["float32"].peak > 0, "a silent model proves nothing"
    assert report["float32"].max_relative_error <= float32_tol, report.summary()
    assert report["double"].max_relative_error <= double_tol, report.summary()


def test_the_runtime_realises_exactly_the_schemas_kinds():
    assert sorted(runtime_kinds()) == sorted(schema_kinds())


@pytest.mark.parametrize("kind", SINGLE_KINDS)
def test_every_module_kind_plays_like_flamo(kind):
    assert_equivalent(adac.verify(single(kind), FS, 2048, nfft=NFFT.get(kind, 1 << 15), backend="runtime"))


def _nested_loops():
    torch.manual_seed(3)
    inner = system.Recursion(delay_lines([13, 17]), system.Series(dsp.Matrix(size=(2, 2), matrix_type="orthogonal", **CPU),
                                                                  line_gains([0.6, 0.5])))
    outer_forward = system.Series(delay_lines([41, 29]), inner)
    return system.Shell(system.Recursion(outer_forward, system.Series(dsp.Matrix(size=(2, 2), matrix_type="orthogonal", **CPU),
                                                                      line_gains([0.3, 0.25]))))


def _loop_with_delay_in_feedback():
    torch.manual_seed(4)
    forward = system.Series(dsp.Matrix(size=(3, 3), matrix_type="orthogonal", **CPU), line_gains([0.8, 0.7, 0.75]))
    return system.Shell(system.Recursion(forward, delay_lines([23, 31, 37])))


ZOO = {
    "fdn-8-orthogonal-biquad-direct": (lambda: fdn(8, t60=0.15, n_in=1, n_out=2, attenuation="biquad", direct=True), 24000, 1 << 17),
    "fdn-16-householder": (lambda: fdn(16, t60=0.1, n_in=1, n_out=1, attenuation="none", matrix="householder", direct=False),
                           12000, 1 << 16),
    "fdn-16-hadamard": (lambda: fdn(16, t60=0.1, n_in=1, n_out=1, attenuation="none", matrix="hadamard", direct=False),
                        12000, 1 << 16),
    "fdn-16-geq": (lambda: fdn(16, t60=0.5, n_in=1, n_out=2, attenuation="geq", direct=True), 24000, 1 << 18),
    "fdn-8-two-in-two-out": (lambda: fdn(8, t60=0.1, n_in=2, n_out=2, attenuation="biquad", direct=True), 12000, 1 << 16),
    "nested-loops": (_nested_loops, 8192, 1 << 16),
    "loop-with-its-delay-in-the-feedback-path": (_loop_with_delay_in_feedback, 8192, 1 << 16),
}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_models_play_like_flamo(name):
    make, n, nfft = ZOO[name]
    assert_equivalent(adac.verify(make(), FS, n, nfft=nfft, backend="runtime"))


@pytest.mark.parametrize("double", [False, True], ids=["float32", "double"])
def test_fractional_delays_are_the_faust_backends_interpolators(double):
    """FLAMO's fractional delay is the ideal exp(-jwd), which no causal filter is (tests/test_fractional.py measures the
    interpolator against it per band): the runtime realises the FAUST backend's Lagrange interpolators, sample for sample."""
    ir = adac.flamo_to_json(fdn(6, t60=0.1, n_in=1, n_out=2, attenuation="biquad", direct=True, isint=False,
                                delays=[443.3, 521.7, 613.25, 701.9, 809.45, 997.45]), FS)
    faust = impulse_responses(build_renderer(json_to_faust(ir), double=double), FS, 12000)
    runtime = impulse_responses(build_runtime_renderer(ir, double=double), FS, 12000)
    assert np.abs(faust).max() > 0.01
    assert np.abs(runtime - faust).max() <= (FLOAT32_TOL if not double else DOUBLE_TOL) * np.abs(faust).max()


@settings(max_examples=RANDOM_MODELS, **SETTINGS)
@given(flamo_models())
def test_random_flamo_models_play_like_flamo(case):
    description, model, n_samples, nfft = case
    try:
        report = adac.verify(model, FS, n_samples, nfft=nfft, backend="runtime")
    except AdacError as exc:
        pytest.fail(f"{description}: the runtime refuses a model built from supported classes: {exc}")
    assert report["float32"].peak > 0, f"{description}: a silent model proves nothing"
    assert report["float32"].max_relative_error <= RANDOM_FLOAT32_TOL, f"{description}: {report.summary()}"
    assert report["double"].max_relative_error <= DOUBLE_TOL, f"{description}: {report.summary()}"


def _render(document: dict, n: int) -> subprocess.CompletedProcess:
    """The runtime's render driver on ``document`` in double, its exit status and output kept (a refusal is an answer)."""
    binary, *model = document_renderer(document, double=True)
    return subprocess.run([binary, str(document["fs"]), str(n), *model], capture_output=True)


@settings(max_examples=RANDOM_DOCUMENTS, **SETTINGS)
@given(ir_documents())
def test_random_ir_documents_play_as_simulated_or_are_refused_by_name(document):
    n = 512
    proc = _render(runtime_document(document, validate=False), n)
    if proc.returncode != 0:
        error = proc.stderr.decode()
        assert proc.returncode == 2 and error.startswith("adac: error: "), error
        # what a valid document may be refused for (as the FAUST backend refuses it): a delay-free loop, a bound,
        # a number the float build cannot hold
        assert any(reason in error for reason in ("delay-free loop", "limit", "beyond the float range")), error
        return
    data = np.frombuffer(proc.stdout, dtype="<f8")
    n_in, n_out = int(data[0]), int(data[1])
    assert (n_in, n_out) == (document["input_channels"], document["output_channels"])
    played = data[2:].reshape(n_in, n, n_out).transpose(1, 2, 0)
    with np.errstate(all="ignore"):
        expected = simulate(document, n)
        peak = np.abs(expected).max()
        if not np.isfinite(expected).all() or not 0 < peak < 1e100:
            return  # overflowing or silent: nothing to compare
        # the simulation filters with each section's transfer function, the runtime (as the FAUST class) runs the
        # state-variable structure: on the strategy's ill-conditioned sections (poles at the unit circle, gains
        # near 1e300) the two float64 structures round apart by up to ~2e-7 x peak; a wrong route, latency or
        # coefficient is off by far more (tests above hold the runtime to FLAMO and to the FAUST class at 1e-9)
        assert np.abs(played - expected).max() <= RANDOM_SIMULATION_TOL * peak, (np.abs(played - expected).max() / peak)


CONTROLS = {"rt60": True, "dry_wet": True, "pre_delay": True}
SETTINGS_AT_START = {"/adac/rt60": 0.3, "/adac/dry_wet": 0.7, "/adac/pre_delay": 3.3}
MOVES = [(1000, "/adac/rt60", 0.1), (2000, "/adac/dry_wet", 0.2), (3000, "/adac/pre_delay", 10.0), (5000, "/adac/rt60", 0.25),
         (7001, "/adac/dry_wet", 1.0), (9000, "/adac/pre_delay", 0.0)]


@pytest.fixture(scope="module")
def fdn_ir():
    return adac.flamo_to_json(fdn(8, t60=0.15, n_in=1, n_out=2, attenuation="biquad", direct=True), FS)


@pytest.mark.parametrize("double", [False, True], ids=["float32", "double"])
@pytest.mark.parametrize("moved", [False, True], ids=["defaults", "set-and-moved"])
def test_the_controls_mean_what_they_mean_in_the_faust_class(fdn_ir, double, moved):
    params, changes = (SETTINGS_AT_START, MOVES) if moved else (None, None)
    faust = impulse_responses(build_renderer(json_to_faust(fdn_ir, CONTROLS), double=double), FS, 12000,
                              params=params, changes=changes)
    runtime = impulse_responses(build_runtime_renderer(fdn_ir, CONTROLS, double=double), FS, 12000,
                                params=params, changes=changes)
    peak = np.abs(faust).max()
    assert peak > 0.1
    assert np.abs(runtime - faust).max() <= (FLOAT32_TOL if not double else DOUBLE_TOL) * peak


def test_a_lossless_prototype_takes_the_rt60_control_like_the_faust_class():
    torch.manual_seed(5)
    loop = system.Recursion(delay_lines([31, 37, 41, 43]), dsp.Matrix(size=(4, 4), matrix_type="orthogonal", **CPU))
    ir = adac.flamo_to_json(system.Shell(loop), FS)
    controls = {"rt60": {"default": 0.2}, "dry_wet": {"law": "linear"}}
    changes = [(3000, "/adac/rt60", 0.1), (6000, "/adac/dry_wet", 0.5)]
    faust = impulse_responses(build_renderer(json_to_faust(ir, controls), double=True), FS, 9000, changes=changes)
    runtime = impulse_responses(build_runtime_renderer(ir, controls, double=True), FS, 9000, changes=changes)
    assert np.abs(faust).max() > 0.1
    assert np.abs(runtime - faust).max() <= DOUBLE_TOL * np.abs(faust).max()


def test_any_block_size_plays_the_same_signal(fdn_ir, tmp_path):
    """The render driver calls the runtime with blocks cut at every control change: a change every few samples
    cuts the loops' blocks at odd places, and the output must not move (dry_wet at its default 1.0 is the model
    alone, exactly)."""
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((6000, 1))
    renderer = build_runtime_renderer(fdn_ir, None, double=True)
    whole = process_signal(renderer, FS, signal)
    with_controls = build_runtime_renderer(fdn_ir, {"dry_wet": True}, double=True)
    cuts = [(int(t), "/adac/dry_wet", 1.0) for t in np.cumsum(rng.integers(1, 97, 120)) if t < 6000]
    cut = process_signal(with_controls, FS, signal, changes=cuts)
    assert np.abs(whole).max() > 0.1
    # the matrix product's rounding depends on the block's width: equal within double rounding, not bit for bit
    assert np.abs(whole - cut).max() <= 1e-13 * np.abs(whole).max()


def test_a_model_the_runtime_does_not_realise_is_refused_naming_the_node(tmp_path):
    document = adac.flamo_to_json(fdn(4, t60=0.1, attenuation="none", direct=False), FS)
    document = runtime_document(document)
    graph = json.loads(json.dumps(document["graph"]))

    def first(node, kind):
        if node["kind"] == kind:
            return node
        for child in node.get("children", []) + [node[k] for k in ("feedforward", "feedback") if k in node]:
            found = first(child, kind)
            if found:
                return found
        return None

    node = first(graph, "delay")
    node["kind"] = "convolution"
    proc = _render({**document, "graph": graph}, 16)
    assert proc.returncode == 2
    message = proc.stderr.decode()
    assert message.startswith("adac: error: ") and f"{node['path']}: convolution: " in message, message
