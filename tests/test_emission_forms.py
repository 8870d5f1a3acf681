"""Cheap emission forms (FWHT for Hadamard, rank-one Householder, folded gains) stay equivalent to FLAMO.

Each form is checked three ways: the compiled FAUST matches FLAMO (``adac.verify``, float32
and ``-double``), its cost in the *generated C++* has the right order (FAUST's normaliser
can undo a structure written in the ``.dsp``, so counting in the ``.dsp`` proves nothing),
and a deliberately wrong variant of the emitted code fails the comparison.
"""
import re

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system
from scipy.linalg import hadamard

import adac
from adac.backends.faust import emit as faust_backend
from adac.ir.hadamard import hadamard_form
from adac.backends.faust.render import faust_to_cpp
from conftest import DOUBLE_TOL, FLOAT32_TOL
from flamo_models import CPU, FS, coprime_delays, fdn, gains_for_t60, set_delays_samples

pytestmark = pytest.mark.usefixtures("faust_available")

N_SAMPLES, NFFT = 8000, 1 << 16  # nfft >= 4 x the compared length; t60 = 0.1 s decays far within it


def _check(report):
    assert report["float32"].max_relative_error <= FLOAT32_TOL, report.summary()
    assert report["double"].max_relative_error <= DOUBLE_TOL, report.summary()


def _definition(code: str, suffix: str) -> str:
    return next(line for line in code.splitlines() if re.match(rf"n\d+_\w*{suffix}\w* =", line))


def loop_body(cpp: str) -> str:
    """The per-sample loop of ``compute()`` in FAUST's scalar C++."""
    return re.search(r"virtual void compute\(.*?for \(int i0 = 0;[^\n]*\n(.*?)\n\t\t}\n", cpp, re.S).group(1)


def loop_ops(cpp: str) -> dict[str, int]:
    """Binary arithmetic operators in the per-sample loop of ``compute()`` (array index arithmetic excluded)."""
    body = re.sub(r"\[[^\[\]]*\]", "", loop_body(cpp))
    return {"add": body.count(" + ") + body.count(" - "), "mul": body.count(" * ")}


def matrix_cpp_ops(module) -> dict[str, int]:
    return loop_ops(faust_to_cpp(adac.flamo_to_faust(system.Shell(module), FS)))


def signed_permuted_hadamard(n: int, seed: int = 1) -> np.ndarray:
    """P_r D_r H D_c P_c / sqrt(n): a Hadamard matrix that is not in FLAMO's ordering or signs."""
    rng = np.random.default_rng(seed)
    h = hadamard(n) / np.sqrt(n)
    h = h[rng.permutation(n)][:, rng.permutation(n)]
    return (rng.choice([-1.0, 1.0], n)[:, None] * h * rng.choice([-1.0, 1.0], n)[None, :]).astype(np.float32)


def fdn_with_matrix(matrix: np.ndarray, t60: float = 0.1):
    """The test FDN (``flamo_models.fdn``) with a given dense feedback matrix (a plain ``Gain``)."""
    torch.manual_seed(0)
    n = matrix.shape[0]
    samples = coprime_delays(n)
    lines = dsp.parallelDelay(size=(n,), max_len=max(samples) + 1, isint=True, fs=FS, **CPU)
    set_delays_samples(lines, samples)
    mix = dsp.Gain(size=(n, n), **CPU)
    mix.assign_value(torch.tensor(matrix))
    gains = dsp.parallelGain(size=(n,), **CPU)
    gains.assign_value(torch.tensor(gains_for_t60(samples, t60)))
    lowpass = dsp.parallelBiquad(size=(n,), n_sections=1, filter_type="lowpass", fs=FS, **CPU)
    with torch.no_grad():
        lowpass.param[:, 0, :] = torch.linspace(0.35, 0.6, n)
        lowpass.param[:, 1, :] = 1.0
    loop = system.Recursion(lines, system.Series(mix, gains, lowpass))
    return system.Shell(system.Series(dsp.Gain(size=(n, 1), **CPU), loop, dsp.Gain(size=(2, n), **CPU)))


# --- equivalence of every form ------------------------------------------------------------


@pytest.mark.parametrize("matrix", ["hadamard", "householder", "orthogonal"])
def test_every_form_is_equivalent(matrix):
    _check(adac.verify(fdn(16, matrix=matrix, attenuation="biquad", t60=0.1, n_in=2, n_out=2), FS, N_SAMPLES, nfft=NFFT))


def test_signed_permuted_hadamard_is_detected_and_equivalent():
    matrix = signed_permuted_hadamard(16)
    model = fdn_with_matrix(matrix)
    code = adac.flamo_to_faust(model, FS)
    assert "route(16, 16" in code and "attach(_, 0)" in code  # fast form, with its permutations
    _check(adac.verify(model, FS, N_SAMPLES, nfft=NFFT))


# --- cost in the generated C++ --------------------------------------------------------------


def test_hadamard_16_is_n_log_n_in_the_cpp():
    n = 16
    fast = matrix_cpp_ops(dsp.Matrix(size=(n, n), matrix_type="hadamard", **CPU))
    assert fast["add"] == n * 4 and fast["mul"] == n  # N log2 N additions, one scaling per output
    dense = matrix_cpp_ops(dsp.Matrix(size=(n, n), matrix_type="orthogonal", **CPU))
    assert dense["add"] >= n * (n - 1) and dense["mul"] >= n * n


def test_without_the_barrier_faust_flattens_the_fwht(monkeypatch):
    """The count above can fail: a butterfly written without attach(_, 0) compiles to ~N^2 additions."""
    n = 16
    fwht = faust_backend._fwht
    monkeypatch.setattr(faust_backend, "_fwht", lambda k: fwht(k).replace(" : attach(_, 0)", ""))
    ops = matrix_cpp_ops(dsp.Matrix(size=(n, n), matrix_type="hadamard", **CPU))
    assert ops["add"] > 2 * n * 4


def test_householder_is_linear_in_the_cpp():
    for n in (16, 64):
        ops = matrix_cpp_ops(dsp.HouseholderMatrix(size=(n, n), **CPU))
        assert ops["add"] <= 2 * n and ops["mul"] <= 2 * n, (n, ops)  # u.x, then x - (2u)(u.x)


def test_the_fdn_feedback_costs_what_its_form_costs():
    """Whole FDN, N = 32: the Hadamard and Householder loops cost a few operations per line, the dense one ~N^2."""
    n = 32
    ops = {m: loop_ops(faust_to_cpp(adac.flamo_to_faust(fdn(n, matrix=m, attenuation="biquad", direct=False), FS)))
           for m in ("hadamard", "householder", "orthogonal")}
    assert ops["hadamard"]["add"] < n * 5 + 12 * n, ops  # FWHT + loop sums + SVFs + output sum
    assert ops["householder"]["add"] < 4 * n + 12 * n, ops
    assert ops["orthogonal"]["mul"] >= n * n, ops


# --- folded gains ---------------------------------------------------------------------------


def gains_then(matrix_module, n: int, after: bool = False):
    """Shell(Series(per-line gains, matrix)) (or the matrix first): two gain nodes that fold into one."""
    torch.manual_seed(0)
    gains = dsp.parallelGain(size=(n,), **CPU)
    gains.assign_value(torch.linspace(0.5, 0.95, n))
    return system.Shell(system.Series(matrix_module, gains) if after else system.Series(gains, matrix_module))


@pytest.mark.parametrize("after", [False, True])
def test_diagonal_gains_fold_into_a_dense_neighbour(after):
    n = 8
    model = gains_then(dsp.Matrix(size=(n, n), matrix_type="orthogonal", **CPU), n, after)
    code = adac.flamo_to_faust(model, FS)
    folded = _definition(code, "core_0_core_1")
    assert folded.count(" * x") == n * n and "*(" not in folded  # one matrix, the gains inside its N^2 products
    _check(adac.verify(model, FS, 256))


@pytest.mark.parametrize("after", [False, True])
def test_diagonal_gains_fold_into_the_hadamard_factors(after):
    n = 8
    model = gains_then(dsp.Matrix(size=(n, n), matrix_type="hadamard", **CPU), n, after)
    code = adac.flamo_to_faust(model, FS)
    folded = _definition(code, "core_0_core_1")
    assert "attach(_, 0)" in folded and folded.count("*(") == n  # FWHT, and one factor per line (scale x gain)
    _check(adac.verify(model, FS, 256))


def test_in_the_loop_faust_merges_the_scale_with_the_line_gains():
    """Loops keep their per-line gains in the IR (the certificate bounds each line); the C++ still
    multiplies once per line for the Hadamard (1/sqrt(N) x gain is one constant) and stays O(N)."""
    n = 16
    ops = {m: loop_ops(faust_to_cpp(adac.flamo_to_faust(fdn(n, matrix=m, attenuation="none", direct=False, n_in=1, n_out=1), FS)))
           for m in ("hadamard", "householder", "orthogonal")}
    assert ops["hadamard"]["mul"] == 3 * n, ops  # input gains, scale x line gain, output gains
    # FWHT, loop input sums, output sum, and a "0 - g x" for each negative input gain
    assert n * 4 + 2 * n - 1 <= ops["hadamard"]["add"] <= n * 4 + 3 * n, ops
    assert ops["householder"]["mul"] == 5 * n, ops  # u.x, 2u, line gains, input and output gains
    assert n * n <= ops["orthogonal"]["mul"] <= n * n + 3 * n, ops


def test_a_zero_gain_does_not_densify_a_hadamard():
    n = 8
    model = gains_then(dsp.Matrix(size=(n, n), matrix_type="hadamard", **CPU), n, after=True)
    ir = adac.flamo_to_json(model, FS)
    ir["graph"]["children"][1]["gains"][3] = 0.0
    code = adac.json_to_faust(ir)
    assert "attach(_, 0)" in code and " * x" not in code  # still the fast transform, then the diagonal with its zero


# --- detection from values ------------------------------------------------------------------


def test_hadamard_detection_from_values():
    h = hadamard(16) / 4.0
    form = hadamard_form(h)
    assert form is not None and np.all(form.col == 1) and np.allclose(form.row, 0.25)
    assert hadamard_form(signed_permuted_hadamard(16)) is not None
    g = np.linspace(0.5, 0.9, 16)
    assert hadamard_form(np.diag(g) @ h) is not None and hadamard_form(h @ np.diag(g)) is not None
    assert hadamard_form(h + 1e-9 * np.eye(16)) is None  # not exact: the dense product stays
    assert hadamard_form(np.linalg.qr(np.random.default_rng(0).normal(size=(16, 16)))[0]) is None
    assert hadamard_form(h[:, :8]) is None and hadamard_form(np.ones((3, 3))) is None
    flipped = h.copy()
    flipped[5, 9] *= -1  # +-1/4 entries, but no longer a Hadamard matrix
    assert hadamard_form(flipped) is None


# --- a wrong emission is caught -------------------------------------------------------------


def test_two_swapped_rows_of_the_transform_are_caught(monkeypatch):
    model = fdn(8, matrix="hadamard", attenuation="biquad", t60=0.1, direct=False)
    fwht = faust_backend._fwht
    monkeypatch.setattr(faust_backend, "_fwht", lambda n: f"({fwht(n)} : ro.cross(2), si.bus({n - 2}))" if n == 8 else fwht(n))
    report = adac.verify(model, FS, N_SAMPLES, nfft=NFFT)
    assert report["float32"].max_relative_error > 1e3 * FLOAT32_TOL, report.summary()
    assert report["double"].max_relative_error > 1e3 * FLOAT32_TOL, report.summary()


def test_a_lost_permutation_is_caught(monkeypatch):
    model = fdn_with_matrix(signed_permuted_hadamard(8))
    monkeypatch.setattr(faust_backend, "route", lambda n, source: None)
    report = adac.verify(model, FS, N_SAMPLES, nfft=NFFT)
    assert report["double"].max_relative_error > 1e3 * FLOAT32_TOL, report.summary()


def test_a_wrong_householder_is_caught(monkeypatch):
    model = fdn(8, matrix="householder", attenuation="biquad", t60=0.1, direct=False)
    number = faust_backend.number
    ir = adac.flamo_to_json(model, FS)
    u = ir["graph"]["children"][1]["feedback"]["children"][0]["u"]
    monkeypatch.setattr(faust_backend, "number", lambda v: number(v * 1.001 if v == 2 * u[0] else v))
    report = adac.verify(model, FS, N_SAMPLES, nfft=NFFT)
    assert report["double"].max_relative_error > 10 * DOUBLE_TOL, report.summary()


def test_mcd0_renders_bit_identically():
    """``faust -mcd 0`` (ring buffers for every delay: the fastest scalar option in bench/) changes memory layout only."""
    from adac.backends.faust.render import render_impulse_responses

    code = adac.flamo_to_faust(fdn(8, matrix="householder", attenuation="biquad", t60=0.1, direct=True), FS)
    for double in (False, True):
        default = render_impulse_responses(code, FS, 4000, double=double)
        ring = render_impulse_responses(code, FS, 4000, double=double, extra_flags=("-mcd", "0"))
        assert np.array_equal(default, ring)


def _state_writes(cpp: str) -> int:
    """Stores into the DSP's state arrays (delay lines, one-sample states) per sample of ``compute()``."""
    return len(re.findall(r"^\s*f(?:Rec|Vec)\d+\[[^\]]*\] = ", loop_body(cpp), re.M))


def test_an_fdn_line_is_its_loops_only_state(monkeypatch):
    """An FDN loop is written on the lines' input (``w = x + G F' w'``, output ``F w``): per sample each line
    is one write, its SVF two, and nothing else: no copy of a line's output into a one-sample state, no
    pre-delayed input per line (the loop form for a feedforward delay that is not a bank of lines)."""
    n = 8
    model = fdn(n, matrix="householder", attenuation="biquad", t60=0.1, direct=True)
    code = adac.flamo_to_faust(model, FS)
    assert _state_writes(faust_to_cpp(code, extra_flags=("-mcd", "0"))) == 3 * n
    _check(adac.verify(model, FS, n_samples=N_SAMPLES, nfft=NFFT))
    monkeypatch.setattr(faust_backend, "is_delay_bank", lambda node: False)
    general = faust_to_cpp(adac.flamo_to_faust(model, FS), extra_flags=("-mcd", "0"))
    assert _state_writes(general) >= 4 * n  # the count sees the difference
