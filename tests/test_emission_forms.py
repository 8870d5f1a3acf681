"""Cheap emission forms (FWHT for Hadamard, rank-one Householder, folded gains) stay equivalent to FLAMO."""
import copy
import re

import numpy as np
import pytest

import adac
from adac import faust_backend
from adac.equivalence import flamo_reference
from adac.render import render_impulse_responses
from conftest import DOUBLE_TOL, FLOAT32_TOL
from flamo_models import FS, fdn

pytestmark = pytest.mark.usefixtures("faust_available")


def _definition(code: str, suffix: str) -> str:
    return next(line for line in code.splitlines() if re.match(rf"n\d+_\w*{suffix} =", line))


@pytest.mark.parametrize("matrix", ["hadamard", "householder", "orthogonal"])
def test_every_form_is_equivalent(matrix):
    model = fdn(16, matrix=matrix, attenuation="biquad", t60=0.1, n_in=2, n_out=2)
    report = adac.verify(model, FS, 8000, nfft=1 << 16)
    assert report["float32"].max_relative_error <= FLOAT32_TOL, report.summary()
    assert report["double"].max_relative_error <= DOUBLE_TOL, report.summary()


def test_hadamard_is_a_fast_transform():
    n = 16
    code = adac.flamo_to_faust(fdn(n, matrix="hadamard", attenuation="none", direct=False), FS)
    line = _definition(code, "feedback_0")
    assert line.count("*(") == 1  # one scaling stage (par), not N^2 products
    assert line.count("par(i, 8, +)") == 1 and line.count("par(i, 1, -)") == 8  # log2(N) butterfly stages
    dense = adac.flamo_to_faust(fdn(n, matrix="orthogonal", attenuation="none", direct=False), FS)
    assert dense.count("*(") > n * n


def test_diagonal_gains_fold_into_the_matrix():
    code = adac.flamo_to_faust(fdn(8, matrix="orthogonal", attenuation="biquad", direct=False), FS)
    folded = _definition(code, "feedback_0_core_1_feedback_1")  # matrix + attenuation as one node
    assert folded.count("*(") == 64
    assert not re.search(r"^n\d+_core_1_feedback_1 =", code, flags=re.M)


def test_a_wrong_fast_form_is_caught(monkeypatch):
    """A transform with two outputs swapped (a plausible butterfly bug) fails the comparison."""
    model = fdn(8, matrix="hadamard", attenuation="none", t60=0.1, direct=False)
    ir = adac.flamo_to_json(model, FS)
    reference, _ = flamo_reference(model, 4000, 1 << 15)
    right = render_impulse_responses(adac.json_to_faust(ir), FS, 4000, double=True)
    assert np.abs(right - reference).max() <= DOUBLE_TOL * np.abs(reference).max()
    fwht = faust_backend._fwht
    monkeypatch.setattr(faust_backend, "_fwht", lambda n: f"({fwht(n)} : ro.cross(2), si.bus({n - 2}))" if n == 8 else fwht(n))
    wrong = render_impulse_responses(adac.json_to_faust(ir), FS, 4000, double=True)
    assert np.abs(wrong - reference).max() > 1e-3 * np.abs(reference).max()
