"""Hearing a model while it trains: the incremental emitter, the publisher's tags, and the real
command-line host taking FLAMO training steps as values updates (the runtime, no compiler).

The models are examples/live_training.py's FDN (trained matrix, input/output gains and per-line
attenuation: FLAMO's parallelGEQ or parallelSOSFilter), trained with Adam for a few steps. The
reference for every published document is ``runtime_document(adac.flamo_to_json(...))`` of the same model at the
same step (the full frontend, run independently of the publisher's incremental path).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from flamo.processor import dsp

import adac
from adac.backends.faust.render import impulse_responses
from adac.backends.runtime import document_renderer, runtime_document
from adac.common.errors import AdacError
from adac.hotreload import CommandLineHost, HotReload, build_host
from conftest import FLOAT32_TOL

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from live_training import build, training_steps  # noqa: E402

FS = 48000
NFFT = 2 ** 12
CONTROLS = {"dry_wet": True}

pytestmark = pytest.mark.usefixtures("faust_available")


def model(attenuation: str, lines: int = 4):
    torch.manual_seed(0)
    return build(lines, attenuation, FS, NFFT)


def publisher(path, controls=CONTROLS, **kwargs) -> HotReload:
    return HotReload(FS, name="live", controls=controls, path=path, min_interval_s=0, **kwargs)


def full(play, controls=CONTROLS) -> str:
    """The document of ``play`` by the full frontend, as the publisher writes it (compact JSON)."""
    document = runtime_document(adac.flamo_to_json(play, FS, name="live"), controls)
    return json.dumps(document, separators=(",", ":"), allow_nan=False)


def rendered(document: str, n: int, params=None) -> np.ndarray:
    """The runtime's own render of a published document (float, as the host plays it): impulse responses."""
    return impulse_responses(document_renderer(document), FS, n, params=params)


def delays_of(document: str) -> list:
    """Every delay node's samples in a published document, in graph order."""
    found = []

    def walk(node):
        if node["kind"] == "delay":
            found.append(node["samples"])
        for child in node.get("children", []) + [node[k] for k in ("feedforward", "feedback") if k in node]:
            walk(child)

    walk(json.loads(document)["graph"])
    return found


def close(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| relative to the peak of want."""
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / np.abs(want).max())


def delay_module(play):
    return next(m for m in play.modules() if type(m).__name__ == "parallelDelay")


def lengthen_first_delay(play) -> None:
    delays = delay_module(play)
    samples = delays.s2sample(delays.map(delays.param.detach())).round()
    samples[0] += 1
    delays.assign_value(delays.sample2s(samples))


# --- the incremental emitter -------------------------------------------------------------------


@pytest.mark.parametrize("attenuation", ["geq", "sos"])
def test_training_steps_emit_what_the_full_emitter_emits(tmp_path, attenuation):
    play, train = model(attenuation)
    live = publisher(tmp_path / "live.json")
    codes = []
    for step, _ in training_steps(train, 4, lr=1e-2):
        code = live.emit(play)
        assert code == full(play), f"step {step}: the incremental document differs from the full frontend's"
        codes.append(code)
    assert live.extractor.extractions == 1  # the structure was read once
    assert len(set(codes)) == len(codes)  # every step changed the document (its numbers)


def test_a_new_delay_length_is_read_without_a_new_extraction(tmp_path):
    play, train = model("geq")
    live = publisher(tmp_path / "live.json")
    before = live.emit(play)
    lengthen_first_delay(play)
    code = live.emit(play)
    assert code != before and code == full(play)
    assert live.extractor.extractions == 1


def test_a_structural_change_extracts_again(tmp_path):
    play, train = model("sos")
    live = publisher(tmp_path / "live.json")
    live.emit(play)
    feedback = play.get_core().feedback_loop.feedback
    feedback.attenuation = dsp.parallelGEQ(size=(4,), octave_interval=1, fs=FS, nfft=NFFT)  # another class
    assert live.emit(play) == full(play)
    assert live.extractor.extractions == 2
    feedback.add_module("tilt", dsp.parallelGain(size=(4,), nfft=NFFT))  # one more module
    assert live.emit(play) == full(play)
    assert live.extractor.extractions == 3
    train.get_core().input_gain.assign_value(0.5 * train.get_core().input_gain.param.detach())  # values only
    assert live.emit(play) == full(play)
    assert live.extractor.extractions == 3


# --- the publisher's tags ------------------------------------------------------------------------


def test_the_tag_line(tmp_path):
    live = HotReload(FS, path=tmp_path / "m.dsp", min_interval_s=0, emit=lambda code: code)
    assert live.update("process = _;\n", step=7, loss=0.25)
    assert live.path.read_text() == "// adac-publish step=7 loss=0.25\nprocess = _;\n"
    assert live.update("process = *(0.5);\n", loss=torch.tensor(1 / 3))
    assert live.path.read_text().splitlines()[0] == f"// adac-publish loss={float(torch.tensor(1 / 3))!r}"
    assert live.update("process = *(0.25);\n", step=8)
    assert live.path.read_text().splitlines()[0] == "// adac-publish step=8"
    assert live.update("process = *(0.125);\n")
    assert live.path.read_text() == "// adac-publish\nprocess = *(0.125);\n"
    assert not live.update("process = *(0.125);\n", step=9, loss=0.1)  # the same code: not published again
    for bad in ({"step": 1.5}, {"step": True}, {"step": "3"}, {"loss": "low"}, {"loss": torch.ones(2)}):
        with pytest.raises(AdacError):
            live.update("process = *(0.0625);\n", **bad)


def test_background_publishes_carry_their_tags(tmp_path):
    play, train = model("geq")
    live = publisher(tmp_path / "live.json", background=True)
    for step, loss in training_steps(train, 3):
        live.update(play, step=step, loss=loss)
    assert live.flush(timeout=120) and not live.errors, live.errors
    first, _, code = live.path.read_text().partition("\n")
    assert first == f"// adac-publish step=2 loss={loss!r}"
    assert code == full(play)


# --- through the real command-line host --------------------------------------------------------


@pytest.fixture(scope="module")
def host_binary():
    return build_host(targets=("cli",))["cli"]


@pytest.mark.parametrize("attenuation", ["geq", "sos"])
def test_training_steps_are_values_updates_in_the_host(tmp_path, host_binary, attenuation):
    play, train = model(attenuation)
    live = publisher(tmp_path / "live.json")
    with CommandLineHost(live.path, FS, binary=host_binary) as host:
        losses = []
        for step, loss in training_steps(train, 5, lr=1e-2):
            assert live.update(play, step=step, loss=loss)
            losses.append(loss)
            host.wait(step + 1)
        status = host.status()
        assert (status["compiles"], status["updates"], status["failures"]) == (1, 4, 0), status
        history = host.history()
        assert [entry[1] for entry in history] == ["0", "1", "2", "3", "4"]
        assert [float(entry[2]) for entry in history] == pytest.approx(losses, rel=1e-6)
        assert [entry[3] for entry in history] == ["compile"] + ["update"] * 4
        # a new delay length (the line's length in the loop and at its output), within the line's capacity:
        # the same structure for the extractor, a values update for the host, and the new length is what plays
        before = live.path.read_text().partition("\n")[2]
        lengthen_first_delay(play)
        assert live.update(play, step=5)
        code = live.path.read_text().partition("\n")[2]
        assert delays_of(code) != delays_of(before)
        host.wait(6)
        status = host.status()
        assert (status["compiles"], status["updates"], status["failures"]) == (1, 5, 0), status
        got = host.impulse(4096)  # the host has played nothing yet: its lines are silent, as a fresh instance's
        assert close(got, rendered(code, 4096)) <= FLOAT32_TOL
        assert close(got, rendered(before, 4096)) > 1e-2
        # a structural change: extracted again, a new instance
        play.get_core().feedback_loop.feedback.add_module("tilt", dsp.parallelGain(size=(4,), nfft=NFFT))
        assert live.update(play, step=6)
        host.wait(7)
        status = host.status()
        assert (status["compiles"], status["updates"], status["failures"]) == (2, 5, 0), status
        assert live.extractor.extractions == 2
        assert live.path.read_text().partition("\n")[2] == full(play)


def test_training_steps_with_the_rt60_control_are_values_updates(tmp_path, host_binary):
    """With the rt60 control, each step moves the trained T60 (the slider's default and range, the decay law's
    T0): still one new instance, then values updates; the slider, never set, plays the newest default; and what
    plays is the runtime's own render of the newest document."""
    controls = {"dry_wet": True, "rt60": True}
    play, train = model("geq")
    live = publisher(tmp_path / "live.json", controls=controls, trained_every_s=0)  # the T60 measured every step
    trained = []
    with CommandLineHost(live.path, FS, binary=host_binary) as host:
        for step, loss in training_steps(train, 5, lr=2e-2):
            assert live.update(play, step=step, loss=loss)
            rt60 = json.loads(live.path.read_text().partition("\n")[2])["realisation"]["controls"]["rt60"]
            assert rt60["default"] == rt60["trained"]
            trained.append(rt60["trained"])
            host.wait(step + 1)
        assert len(set(trained)) > 1, trained  # the steps did move the trained T60
        status = host.status()
        assert (status["compiles"], status["updates"], status["failures"]) == (1, 4, 0), status
        code = live.path.read_text().partition("\n")[2]
        assert code == full(play, controls)
        assert host.ask("get /adac/rt60") == f"value {trained[-1]:g}"
        got = host.impulse(4096)
        assert close(got, rendered(code, 4096)) <= FLOAT32_TOL
        # the slider played the new default: at the first step's default (what a step-0 instance plays) the
        # response is another one
        first = rendered(code, 4096, params={"/adac/rt60": float(trained[0])})
        assert close(got, first) > FLOAT32_TOL


def test_a_trained_t60_measured_once_still_plays_the_trained_model_at_the_knobs_default(tmp_path):
    """The publisher measures the rt60 control's trained T60 at most every ``trained_every_s``: the steps in between
    carry the last measurement, and at the knob's default (that T0) the model still plays exactly as trained."""
    controls = {"dry_wet": True, "rt60": True}
    play, train = model("geq")
    live = publisher(tmp_path / "live.json", controls=controls, trained_every_s=3600)
    trained = []
    for _ in training_steps(train, 4, lr=2e-2):
        code = live.emit(play)
        trained.append(json.loads(code)["realisation"]["controls"]["rt60"]["trained"])
    fresh = full(play, controls)
    assert len(set(trained)) == 1 and live.extractor.extractions == 1  # measured once, at the first step
    assert json.loads(fresh)["realisation"]["controls"]["rt60"]["trained"] != trained[0]  # the model's T60 moved
    assert close(rendered(code, 4096), rendered(fresh, 4096)) <= FLOAT32_TOL
