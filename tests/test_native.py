"""The native block kernel (adac.backends.native), rendered for real, against FLAMO and against the FAUST class.

The same tests as the FAUST realisation (tests/test_emission_forms.py, tests/test_equivalence.py,
tests/test_controls.py), on the same models: every emission form of the feedback matrix (dense, Householder,
Hadamard), FDNs of 4 to 64 lines with per-line attenuation filters (biquad, FLAMO's GEQ and SOS), 2-in/2-out,
float32 within 1e-6 x peak and double within 1e-9 x peak of FLAMO in float64 (``adac.verify(..., backend="native")``
renders the native class through the same harness as the FAUST code). With the macro-controls the reference is the
FAUST class (itself tested against the model in test_controls.py): the same render with the controls away from
their defaults and moved during the render, and the same UI. Every tolerance is shown to fail on a model changed by
1e-4 relative in one coefficient, and a delay line one sample long; models the kernel cannot realise are refused,
naming the loop.
"""
import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from flamo.processor import system

import adac
from adac.analysis.controls import normalise_controls
from adac.backends.faust.render import faust_to_cpp, impulse_responses, render_impulse_responses
from adac.backends.native import NativeUnsupported, build_native_renderer, json_to_native, native_to_cpp
from adac.common import toolchain
from adac.frontend.flamo.reference import flamo_reference
from conftest import DOUBLE_TOL, FLOAT32_TOL
from flamo_models import FS, delay_lines, fdn, line_gains, shell
from test_controls import ALL, lossy  # noqa: F401  (lossy: the fixture, used by name)
from test_emission_forms import N_SAMPLES, NFFT, fdn_with_matrix, signed_permuted_hadamard
from test_equivalence import _loop, _matrix, assert_equivalent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from live_training import build as live_training_fdn  # noqa: E402  (the example's FDN with GEQ or SOS attenuation)

pytestmark = pytest.mark.usefixtures("faust_available")

WET_LOOP = "core.branchA.1"  # the loop of flamo_models.fdn with a direct path: Parallel(Series(b, loop, c), dry)


def verify_native(model_or_ir, n_samples: int = N_SAMPLES, nfft: int = NFFT, **kwargs):
    return adac.verify(model_or_ir, FS, n_samples, nfft=nfft, backend="native", **kwargs)


def kernel_lines(ir: dict) -> list[str]:
    """The loops the native class runs in its kernel, as its C++ names them (``// loop k: <path>, <N> lines``)."""
    return [line.strip() for line in json_to_native(ir).splitlines() if line.strip().startswith("// loop ")]


def native_impulse_responses(ir: dict, n_samples: int, *, controls=None, double: bool = False, **settings) -> np.ndarray:
    return impulse_responses(build_native_renderer(ir, controls, double=double), FS, n_samples, **settings)


def perturbed(ir: dict, where: str) -> dict:
    """``ir`` with one coefficient of its first loop's feedback path times (1 + 1e-4): a matrix entry, a
    Householder vector entry (the vector then normalised again) or a line gain."""
    out = copy.deepcopy(ir)
    loop = out["graph"]["children"][0]["children"][1] if out["graph"]["kind"] == "parallel" else out["graph"]["children"][1]
    mix, gains = loop["feedback"]["children"][:2]
    if where == "matrix":
        mix["matrix"][0][1] *= 1 + 1e-4
    elif where == "householder":
        u = np.asarray(mix["u"])
        u[0] *= 1 + 1e-4
        mix["u"] = (u / np.linalg.norm(u)).tolist()
    else:
        gains["gains"][0] *= 1 + 1e-4
    return out


# --- every emission form against FLAMO -------------------------------------------------------------


@pytest.mark.parametrize("matrix", ["hadamard", "householder", "orthogonal"])
def test_every_form_is_equivalent(matrix):
    model = fdn(16, matrix=matrix, attenuation="biquad", t60=0.1, n_in=2, n_out=2)
    assert kernel_lines(adac.flamo_to_json(model, FS)) == [f"// loop 0: {WET_LOOP}, 16 lines"]
    assert_equivalent(verify_native(model))


def test_signed_permuted_hadamard_is_equivalent():
    assert_equivalent(verify_native(fdn_with_matrix(signed_permuted_hadamard(16))))


@pytest.mark.parametrize("where", ["matrix", "householder", "gain"])
def test_a_coefficient_off_by_1e_4_fails_the_tolerance(where):
    """The comparison above sees a model one coefficient of which is off by 1e-4 relative (each form's kernel)."""
    matrix = {"matrix": "orthogonal", "householder": "householder", "gain": "hadamard"}[where]
    model = fdn(16, matrix=matrix, attenuation="biquad", t60=0.1, n_in=2, n_out=2)
    ir = adac.flamo_to_json(model, FS)
    reference, _ = flamo_reference(model, N_SAMPLES, NFFT)
    peak = np.abs(reference).max()
    for double in (False, True):
        right = native_impulse_responses(ir, N_SAMPLES, double=double)
        wrong = native_impulse_responses(perturbed(ir, where), N_SAMPLES, double=double)
        assert np.abs(right - reference).max() <= (DOUBLE_TOL if double else FLOAT32_TOL) * peak
        assert np.abs(wrong - reference).max() > FLOAT32_TOL * peak, (where, double)


def test_a_line_one_sample_long_is_caught():
    model = fdn(8, t60=0.1, attenuation="none", direct=False)
    ir = adac.flamo_to_json(model, FS)
    broken = copy.deepcopy(ir)
    broken["graph"]["children"][1]["feedforward"]["samples"][3] += 1
    reference, _ = flamo_reference(model, 4000, 1 << 15)
    peak = np.abs(reference).max()
    assert np.abs(native_impulse_responses(ir, 4000, double=True) - reference).max() <= DOUBLE_TOL * peak
    assert np.abs(native_impulse_responses(broken, 4000, double=True) - reference).max() > 1e-2 * peak


# --- sizes, attenuation filters, channels ------------------------------------------------------------


@pytest.mark.parametrize("n,matrix", [(4, "orthogonal"), (8, "householder"), (32, "orthogonal"), (32, "householder"),
                                      (64, "orthogonal"), (64, "hadamard")])
def test_fdn_sizes_with_biquad_attenuation(n, matrix):
    """4 to 64 lines (a short T60: FLAMO's reference of 64 lines costs N^3 per frequency bin)."""
    model = fdn(n, matrix=matrix, attenuation="biquad", t60=0.05)
    assert kernel_lines(adac.flamo_to_json(model, FS)) == [f"// loop 0: {WET_LOOP}, {n} lines"]
    assert_equivalent(verify_native(model, n_samples=4000, nfft=1 << 14))


@pytest.mark.parametrize("attenuation,n", [("geq", 8), ("sos", 8), ("sos", 32)])
def test_geq_and_sos_attenuation(attenuation, n):
    """examples/live_training.py's FDN: FLAMO's parallelGEQ (12 sections per line) or parallelSOSFilter per line."""
    model, _ = live_training_fdn(n, attenuation, FS, t60=0.1)
    assert_equivalent(verify_native(model, n_samples=12000, nfft=1 << 16))


def test_two_in_two_out_all_four_paths():
    model = fdn(8, t60=0.1, n_in=2, n_out=2, attenuation="biquad", direct=True)
    report = verify_native(model, n_samples=12000, nfft=1 << 16)
    assert report["double"].errors.shape == (2, 2)
    for precision, tol in (("float32", FLOAT32_TOL), ("double", DOUBLE_TOL)):
        for path in report[precision].paths():
            assert path["relative_error"] <= tol, (precision, path)
    reference, _ = flamo_reference(model, 12000, 1 << 16)
    assert np.all(np.abs(reference).max(axis=0) > 1e-3)  # each path carries signal


def test_several_loops_and_a_loop_the_kernel_leaves_to_faust():
    """Two kernel loops in series, and a loop with its delays in the feedback path (FAUST's) beside one of them."""
    def comb(samples, gain, seed):
        return _loop(delay_lines(samples), system.Series(_matrix(2, seed=seed), line_gains([gain, gain])))

    faust_loop = _loop(line_gains([0.9, 0.8]), system.Series(_matrix(2, seed=7), delay_lines([13, 17])))
    model = system.Shell(system.Series(comb([19, 23], 0.6, 3), system.Parallel(comb([11, 29], 0.5, 5), faust_loop,
                                                                              sum_output=True)))
    ir = adac.flamo_to_json(model, FS)
    assert [line.split(":")[0] for line in kernel_lines(ir)] == ["// loop 0", "// loop 1"]
    assert_equivalent(verify_native(model, n_samples=6000, nfft=1 << 15))


# --- controls: the FAUST class is the reference ------------------------------------------------------


def controlled_renders(ir: dict, native_ir: dict, n: int = 12000) -> tuple[np.ndarray, np.ndarray]:
    """Float32 impulse responses of the FAUST class of ``ir`` and of the native class of ``native_ir``, both with
    the three controls set away from their defaults, then moved at odd sample positions during the render."""
    c = normalise_controls(ALL, ir)
    rt60, lo, hi = c["rt60"]["trained"], c["rt60"]["min"], c["rt60"]["max"]
    params = {"/adac/rt60": max(lo, 0.6 * rt60), "/adac/dry_wet": 0.35, "/adac/pre_delay": 3.0}
    changes = [(2001, "/adac/rt60", min(hi, 1.4 * rt60)), (4099, "/adac/dry_wet", 0.8), (6007, "/adac/pre_delay", 1.25)]
    faust = render_impulse_responses(adac.json_to_faust(ir, ALL), FS, n, params=params, changes=changes)
    native = native_impulse_responses(native_ir, n, controls=ALL, params=params, changes=changes)
    return faust, native


@pytest.fixture(scope="module")
def dense_two_by_two():
    return adac.flamo_to_json(fdn(16, matrix="orthogonal", attenuation="biquad", t60=0.3, n_in=2, n_out=2), FS)


@pytest.mark.parametrize("model", ["lossy", "dense_two_by_two"])
def test_controls_render_as_the_faust_class(model, request):
    ir = request.getfixturevalue(model)
    faust, native = controlled_renders(ir, ir)
    peak = np.abs(faust).max()
    assert peak > 0 and np.abs(native - faust).max() <= FLOAT32_TOL * peak
    # the comparison sees one coefficient off by 1e-4 relative
    _, wrong = controlled_renders(ir, perturbed(ir, "matrix"))
    assert np.abs(wrong - faust).max() > FLOAT32_TOL * peak


JSON_ARCH = """\
#include <cstring>
#include <iostream>
#include "faust/gui/meta.h"
#include "faust/gui/UI.h"
#include "faust/gui/JSONUI.h"
#include "faust/dsp/dsp.h"
<<includeIntrinsic>>
<<includeclass>>
int main() {
    mydsp d;
    JSONUI ui(d.getNumInputs(), d.getNumOutputs());
    d.buildUserInterface(&ui);
    std::cout << ui.JSON() << std::endl;
}
"""


def ui_listing(cpp: str, workdir: Path) -> dict:
    """The class's UI as FAUST's JSONUI describes it (``{"inputs", "outputs", "ui": [...]}``)."""
    source, exe = workdir / "ui.cpp", workdir / "ui"
    source.write_text(cpp)
    toolchain.run([toolchain.cxx(), "-std=c++17", "-O0", "-DFAUSTFLOAT=float", f"-I{toolchain.eigen_include()}",
                   str(source), "-o", str(exe)], "C++ compile of the UI listing")
    listing = json.loads(toolchain.run([str(exe)], "UI listing").stdout)
    return {key: listing[key] for key in ("inputs", "outputs", "ui")}


def widgets(items: list[dict]) -> list[dict]:
    """The widgets of a JSONUI ``ui`` list, groups flattened."""
    return [w for item in items for w in (widgets(item["items"]) if "items" in item else [item])]


def test_the_ui_is_the_faust_classs(lossy, tmp_path):  # noqa: F811
    arch = tmp_path / "json_arch.cpp"
    arch.write_text(JSON_ARCH)
    faust = ui_listing(faust_to_cpp(adac.json_to_faust(lossy, ALL), architecture=arch), tmp_path)
    native = ui_listing(native_to_cpp(lossy, ALL, architecture=arch), tmp_path)
    assert native == faust
    assert sorted(w["address"] for w in widgets(native["ui"])) == ["/adac/dry_wet", "/adac/pre_delay", "/adac/rt60"]
    # the comparison sees a range: the same controls with another rt60 maximum list differently
    wider = {**ALL, "rt60": {"max": 3 * normalise_controls(ALL, lossy)["rt60"]["max"]}}
    assert ui_listing(native_to_cpp(lossy, wider, architecture=arch), tmp_path) != faust


# --- refusals ------------------------------------------------------------------------------------------


def test_fractional_delays_are_refused_naming_the_loop():
    model = fdn(8, isint=False, delays=[101.3, 157.7, 199.5, 241.25, 283.9, 331.1, 379.6, 421.45], attenuation="none", t60=0.1)
    with pytest.raises(NativeUnsupported, match=rf"{WET_LOOP}: the feedforward path is not a bank of integer delay lines"):
        json_to_native(adac.flamo_to_json(model, FS))


def test_a_feedforward_path_that_is_not_a_bank_of_lines_is_refused():
    forward = system.Series(delay_lines([20, 31]), line_gains([1.0, 1.0]), delay_lines([7, 1]))  # as test_equivalence
    model = system.Shell(_loop(forward, system.Series(_matrix(2), line_gains([0.8, 0.7]))))
    with pytest.raises(NativeUnsupported, match=r"core: the feedforward path is not a bank of integer delay lines"):
        json_to_native(adac.flamo_to_json(model, FS))
    only_feedback_delays = system.Shell(_loop(line_gains([0.9, 0.8, 0.7]), system.Series(_matrix(3), delay_lines([13, 17, 23]))))
    with pytest.raises(NativeUnsupported, match=r"core: the feedforward path is not a bank of integer delay lines"):
        json_to_native(adac.flamo_to_json(only_feedback_delays, FS))


def test_a_model_without_a_loop_is_refused():
    with pytest.raises(NativeUnsupported, match="no loop"):
        json_to_native(adac.flamo_to_json(shell(line_gains([0.5, 0.25])), FS))
