"""The runtime's audio path is real-time safe: under hosts/rtcheck's interposer, nothing on the audio thread
allocates, frees, locks, waits or makes a system call, for large models (64 lines with a GEQ per line, 128 lines
with a dense matrix, fractional delays), blocks of any size (1 to 512), the controls moved on every block and the
values swapped (a training step) every few blocks, in float and in double. The driver is
``runtime/tools/realtime.cpp``; the interposer and its report are tests/test_realtime.py's.
"""
from __future__ import annotations

import copy
import json
import subprocess

import pytest

import adac
from adac.backends.runtime import build_runtime, runtime_document, write_model
from flamo_models import FS, fdn
from test_realtime import assert_real_time, build_rtcheck, rtcheck_env

pytestmark = [pytest.mark.juce, pytest.mark.usefixtures("faust_available")]

CONTROLS = {"rt60": True, "dry_wet": True, "pre_delay": True}
MODELS = {
    "64-lines-geq": lambda: fdn(64, t60=0.5, n_in=1, n_out=2, attenuation="geq", direct=True),
    "128-lines-dense": lambda: fdn(128, t60=0.5, n_in=2, n_out=2, attenuation="biquad", matrix="orthogonal", direct=True),
    "8-lines-fractional-hadamard": lambda: fdn(8, t60=0.3, n_in=1, n_out=2, attenuation="biquad", matrix="hadamard",
                                               isint=False, delays=[443.3, 521.7, 613.25, 701.9, 809.45, 997.45, 1103.1, 1201.6]),
}


def _scaled_gains(node: dict, factor: float) -> None:
    """Every diagonal gain of the graph times ``factor``: the same structure, other numbers (a training step)."""
    if node["kind"] == "gain" and node["diagonal"]:
        node["gains"] = [g * factor for g in node["gains"]]
    for child in node.get("children", []) + [node[k] for k in ("feedforward", "feedback") if k in node]:
        _scaled_gains(child, factor)


@pytest.fixture(scope="module")
def rtcheck():
    return build_rtcheck()


@pytest.mark.parametrize("name", MODELS)
def test_the_runtime_plays_in_real_time(rtcheck, name, tmp_path):
    a = runtime_document(adac.flamo_to_json(MODELS[name](), FS), CONTROLS)
    b = copy.deepcopy(a)
    _scaled_gains(b["graph"], 0.98)
    report = tmp_path / "rtcheck.json"
    proc = subprocess.run([str(build_runtime() / "adac-runtime-realtime"), str(write_model(a)), str(write_model(b))],
                          env=rtcheck_env(rtcheck, report), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["finite"] and result["blocks"] > 0, result
    assert result["peak_before"] > 1e-3 and result["peak_after"] > 1e-3, f"silent output: {result}"
    assert_real_time(json.loads(report.read_text()), f"the runtime playing {name}")
