"""Hot reload: the publisher, and the real reloading host driven from its command line: IR documents (what
``adac.HotReload`` publishes) played by the runtime, hand-written FAUST code compiled with libfaust.

The host (``adac-hotreload-render``) processes audio only when told to, so every comparison below
is of exactly known samples: after a publish the test waits for the reload, runs silence through
the crossfade, then records an impulse response and compares it with the same code rendered by
``adac.backends.faust.render`` (FAUST's C++ backend) or the same document rendered by the runtime's render
driver (and FLAMO), to 1e-6 of the peak. The ThreadSanitizer test floods a host built with
``-fsanitize=thread`` with publishes while it plays and its parameters move.
"""
import copy
import fcntl
import functools
import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import adac
from adac.common.errors import AdacError
from adac.backends.runtime import document_renderer, runtime_document
from adac.hotreload import CommandLineHost, HotReload, build_host

ROOT = Path(__file__).resolve().parent.parent
from adac.backends.faust import json_to_faust
from adac.backends.faust.render import impulse_responses, process_signal, render_impulse_responses, render_signal
from adac.frontend.flamo.reference import flamo_reference
from adac.build.manifest import load_manifest
from adac.frontend.flamo.checkpoint import load_model
from adac.ir import load_ir
from conftest import FLOAT32_TOL
from flamo_models import FS, fdn, set_delays_samples

pytestmark = pytest.mark.usefixtures("faust_available")


def comb(delay: int, feedback: float, tap: int, wet: float = 0.5) -> str:
    """A small FAUST program with a dry_wet slider (address /adac/dry_wet) and a feedback comb."""
    return f"""import("stdfaust.lib");
g = hgroup("adac", hslider("dry_wet", 0.5, 0, 1, 0.001));
process = _ <: (@({tap}) * g), (+ ~ (@({delay}) * {feedback!r}) : *({wet!r})) :> _;
"""


def fdn_code(delays, gain: float, mix: float) -> str:
    """A 2-line FDN (sum/difference feedback matrix, per-line gain) with a level slider at /adac/level."""
    d0, d1 = delays
    return f"""import("stdfaust.lib");
level = hgroup("adac", hslider("level", 1, 0, 2, 0.001));
feedback = (_, _ <: +, -) : (*({mix!r}) : @({d0}) * {gain!r}), (*({mix!r}) : @({d1}) * {gain!r});
fdn = (_ <: _, _) : ((ro.interleave(2, 2) : par(i, 2, +)) ~ feedback);
process = fdn :> _ * level;
"""


def identity(code):
    return code


def publisher(path, **kwargs) -> HotReload:
    kwargs.setdefault("min_interval_s", 0)
    return HotReload(FS, path=path, emit=identity, **kwargs)


def published(path) -> str:
    """The code of a published file, without the publisher's tag line (which must be there)."""
    tag, _, code = Path(path).read_text().partition("\n")
    assert tag.startswith("// adac-publish"), tag
    return code


def close(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| relative to the peak of want."""
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


# --- publisher -----------------------------------------------------------------------------


def test_publishes_only_changes(tmp_path):
    live = publisher(tmp_path / "m.dsp")
    assert live.update(comb(9, 0.5, 3)) is True
    assert live.update(comb(9, 0.5, 3)) is False  # same code: nothing written
    assert live.update(comb(9, 0.4, 3)) is True
    assert published(tmp_path / "m.dsp") == comb(9, 0.4, 3)
    assert live.published == 2 and live.steps == 3


def test_throttle_by_steps_and_interval(tmp_path):
    live = publisher(tmp_path / "m.dsp", every_n_steps=3)
    wrote = [live.update(comb(10 + i, 0.5, 3)) for i in range(7)]
    assert wrote == [True, False, False, True, False, False, True]
    slow = publisher(tmp_path / "s.dsp", min_interval_s=60)
    assert slow.update(comb(5, 0.5, 3)) and not slow.update(comb(6, 0.5, 3))
    assert slow.update(comb(7, 0.5, 3), force=True)
    assert published(tmp_path / "s.dsp") == comb(7, 0.5, 3)


def test_the_emitter_runs_only_when_a_publish_is_due(tmp_path):
    calls = []
    live = HotReload(FS, path=tmp_path / "m.dsp", every_n_steps=2, min_interval_s=0,
                     emit=lambda model: calls.append(model) or comb(9, 0.5 + 0.01 * len(calls), 3))
    for step in range(6):
        live.update(step)
    assert calls == [0, 2, 4]  # throttled steps cost nothing


def test_default_emitter_is_the_runtime_document(tmp_path):
    model = fdn(4, t60=0.05, direct=False, n_out=1)
    controls = {"dry_wet": True, "rt60": True}
    live = HotReload(FS, name="live", controls=controls, path=tmp_path / "m.json", min_interval_s=0,
                     trained_every_s=0)  # the trained T60 measured at every step, as the full path does
    assert live.update(model)
    want = runtime_document(adac.flamo_to_json(model, FS, name="live"), controls)
    assert json.loads(published(live.path)) == json.loads(json.dumps(want))
    with torch.no_grad():  # a step: the same document as a full extraction gives, the IR not validated again
        for module in model.modules():
            if hasattr(module, "param") and "Delay" not in type(module).__name__:
                module.param.mul_(0.97)
    assert live.update(model)
    want = runtime_document(adac.flamo_to_json(model, FS, name="live"), controls)
    assert json.loads(published(live.path)) == json.loads(json.dumps(want))
    assert live.extractor.extractions == 1
    assert HotReload(FS, name="x").path == Path("build") / "live" / "x.json"


def test_publish_takes_faust_code_or_a_document_and_refuses_other_things(tmp_path):
    live = HotReload(FS, path=tmp_path / "m.json")
    document = runtime_document(adac.flamo_to_json(fdn(4, t60=0.05, direct=False, n_out=1), FS), None)
    assert live.publish(document, step=3)
    assert json.loads(published(live.path)) == json.loads(json.dumps(document))
    assert live.publish(comb(9, 0.5, 3)) and published(live.path) == comb(9, 0.5, 3)
    with pytest.raises(AdacError, match="FAUST code or a runtime document"):
        live.publish(42)
    document["graph"]["children"][0]["matrix"][0][0] = float("nan")
    with pytest.raises(AdacError, match="not finite"):
        live.publish(document)


def test_a_reader_never_sees_half_a_file(tmp_path):
    path = tmp_path / "m.dsp"
    codes = [comb(10 + i, 0.5, 3) + "// " + "x" * (20000 + 37 * i) + "\n" for i in range(200)]
    live = publisher(path)
    live.publish(codes[0])
    known = set(codes)
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(published(path))

    thread = threading.Thread(target=reader)
    thread.start()
    for code in codes[1:]:
        assert live.publish(code)
    stop.set()
    thread.join()
    assert len(seen) > 10 and all(text in known for text in seen)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp files left behind


def test_two_publishers_on_one_path(tmp_path):
    path = tmp_path / "m.dsp"
    first, second = publisher(path), publisher(path)
    with open(path.with_name("m.dsp.lock"), "a") as held:  # one publisher is mid-write
        fcntl.flock(held, fcntl.LOCK_EX)
        start = time.monotonic()
        assert second.publish(comb(11, 0.5, 3)) is False  # skipped at once, not blocked
        assert time.monotonic() - start < 0.5
        assert second.skipped == 1
    assert not path.exists()
    assert first.publish(comb(12, 0.5, 3)) and second.publish(comb(13, 0.5, 3))
    assert published(path) == comb(13, 0.5, 3)  # whole files; the last one wins
    # a skipped publish is retried: the same code is not "already published"
    assert second.publish(comb(11, 0.5, 3))


def test_two_publishers_racing_leave_whole_files(tmp_path):
    path = tmp_path / "m.dsp"
    pubs = [publisher(path), publisher(path)]
    codes = [[comb(10 + i, 0.1 * k + 0.05, 3) + "//" + "y" * 5000 + "\n" for i in range(100)] for k in range(2)]
    threads = [threading.Thread(target=lambda p=p, c=c: [p.publish(x) for x in c]) for p, c in zip(pubs, codes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert published(path) in set(codes[0]) | set(codes[1])
    # every call either wrote a whole file or skipped at once (how many of each depends on the scheduling:
    # a publisher that finds the other mid-write skips, by design)
    assert all(p.published + p.skipped == 100 for p in pubs), [(p.published, p.skipped) for p in pubs]
    assert sum(p.published for p in pubs) >= 1
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]  # no temp files left behind


def test_background_mode_never_waits_for_the_emitter_and_ends_on_the_newest(tmp_path):
    def slow_emit(model):
        time.sleep(0.1)  # an emitter slower than the training step
        return comb(9, round(float(model.weight.detach().sum()), 6), 3)

    model = torch.nn.Linear(2, 1, bias=False)
    live = HotReload(FS, path=tmp_path / "m.dsp", min_interval_s=0, emit=slow_emit, background=True)
    start = time.monotonic()
    for step in range(20):
        with torch.no_grad():
            model.weight.fill_(0.01 * step)  # the "optimiser step" mutates the live model
        assert live.update(model)
    assert time.monotonic() - start < 0.5  # 20 steps; a blocking emitter would take 2 s
    assert live.flush(timeout=10)
    assert published(live.path) == comb(9, round(0.01 * 19 * 2, 6), 3)  # the newest snapshot, not a torn one
    assert 1 <= live.published < 20 and not live.errors
    assert model.weight.sum().item() == pytest.approx(0.38)  # the caller's model is untouched


def test_background_mode_reports_emitter_errors(tmp_path):
    def broken(model):
        raise ValueError("no FAUST for you")

    live = HotReload(FS, path=tmp_path / "m.dsp", min_interval_s=0, emit=broken, background=True)
    assert live.update(torch.nn.Linear(1, 1))
    assert live.flush(timeout=10)
    assert live.errors == ["ValueError: no FAUST for you"] and not live.path.exists()


def test_bad_settings():
    with pytest.raises(AdacError):
        HotReload(FS, every_n_steps=0)
    with pytest.raises(AdacError):
        HotReload(FS, min_interval_s=-1)
    with pytest.raises(AdacError):
        HotReload(FS, trained_every_s=float("nan"))
    with pytest.raises(AdacError):
        build_host(targets=("gui",))


# --- the reloading host ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_binary():
    return build_host(targets=("cli",))["cli"]


class Host(CommandLineHost):
    def __init__(self, binary, path, *args):
        super().__init__(path, FS, *args, binary=binary)

    def settle_and_impulse(self, n: int) -> np.ndarray:
        assert self.ask("input silence") == "ok"
        self.ask("run 8192")  # past any crossfade; the new DSP has heard only silence
        return self.impulse(n)

    def quit(self) -> str:
        """Quit; what the host wrote to its standard error."""
        self.close(timeout=10)
        return self.stderr()


@pytest.fixture
def host(host_binary, tmp_path):
    live = publisher(tmp_path / "live.dsp")
    live.publish(comb(9, 0.5, 3))
    h = Host(host_binary, live.path, "--status", tmp_path / "status.json")
    h.wait(1)
    yield h, live
    h.quit()


@pytest.mark.parametrize("backend", ["llvm", "interpreter"])
@pytest.mark.parametrize("lift", [True, False], ids=["lift", "nolift"])
def test_swap_plays_the_new_program_and_keeps_sliders(host_binary, tmp_path, backend, lift):
    live = publisher(tmp_path / "live.dsp")
    a, b = comb(9, 0.5, 3), comb(7, -0.25, 5)  # different delays: a real recompile and crossfade
    live.publish(a)
    h = Host(host_binary, live.path, "--backend", backend, *([] if lift else ["--no-lift"]))
    try:
        h.wait(1)
        assert h.ask("set /adac/dry_wet 0.25") == "ok"
        before = h.impulse(400)
        assert close(before, render_impulse_responses(a, FS, 400, params={"/adac/dry_wet": 0.25})) <= FLOAT32_TOL
        live.publish(b)
        h.wait(2)
        after = h.settle_and_impulse(400)
        assert close(after, render_impulse_responses(b, FS, 400, params={"/adac/dry_wet": 0.25})) <= FLOAT32_TOL
        # and not A's response any more (the comparison can fail)
        assert close(after, render_impulse_responses(a, FS, 400, params={"/adac/dry_wet": 0.25})) > 1e-2
        assert h.ask("get /adac/dry_wet") == "value 0.25"
        status = h.status()
        assert status["backend"] == backend and status["compiles"] == 2 and status["failures"] == 0
        assert status["lifted"] == int(lift)
    finally:
        h.quit()


def test_a_slider_moved_between_two_swaps_is_kept(host):
    h, live = host
    live.publish(comb(11, 0.3, 2))
    h.wait(2)
    assert h.ask("set /adac/dry_wet 0.8") == "ok"
    live.publish(comb(13, 0.2, 4))
    h.wait(3)
    want = render_impulse_responses(comb(13, 0.2, 4), FS, 300, params={"/adac/dry_wet": 0.8})
    assert close(h.settle_and_impulse(300), want) <= FLOAT32_TOL


def test_a_program_with_more_constants_than_the_limit_compiles_plainly(host_binary, tmp_path):
    """--max-lifted: past the limit the program is not lifted, so a constant-only change compiles (and plays)."""
    live = publisher(tmp_path / "live.dsp")
    versions = [fdn_code((17, 23), 0.7 + 0.01 * i, 0.5 - 0.02 * i) for i in range(3)]
    live.publish(versions[0])
    h = Host(host_binary, live.path, "--max-lifted", "3")
    try:
        h.wait(1)
        for count, code in enumerate(versions[1:], start=2):
            live.publish(code)
            h.wait(count)
        status = h.status()
        assert status["compiles"] == 3 and status["updates"] == 0 and status["lifted"] == 0
        want = render_impulse_responses(versions[-1], FS, 2000)
        assert close(h.settle_and_impulse(2000), want) <= FLOAT32_TOL
    finally:
        h.quit()


@pytest.mark.parametrize("backend", ["llvm", "interpreter"])
def test_constant_only_changes_take_the_fast_path(host_binary, tmp_path, backend):
    """Same structure, new coefficients: no compile, the values go into the running DSP."""
    live = publisher(tmp_path / "live.dsp")
    versions = [fdn_code((17, 23), 0.7 + 0.01 * i, 0.5 - 0.02 * i) for i in range(5)]
    live.publish(versions[0])
    h = Host(host_binary, live.path, "--backend", backend)
    try:
        h.wait(1)
        assert h.ask("set /adac/level 0.5") == "ok"
        for count, code in enumerate(versions[1:], start=2):
            live.publish(code)
            h.wait(count)
        status = h.status()
        assert status["compiles"] == 1 and status["updates"] == 4 and status["lifted"] == 1
        got = h.settle_and_impulse(2000)
        want = render_impulse_responses(versions[-1], FS, 2000, params={"/adac/level": 0.5})
        assert close(got, want) <= FLOAT32_TOL
        assert close(got, render_impulse_responses(versions[0], FS, 2000, params={"/adac/level": 0.5})) > 1e-2
        assert h.ask("get /adac/level") == "value 0.5"
    finally:
        h.quit()


@pytest.mark.parametrize("backend", ["llvm", "interpreter"])
def test_a_delay_length_within_capacity_is_an_update_and_plays_the_new_length(host_binary, tmp_path, backend):
    """A delay of 17 samples compiles with room for 64 (the power of two >= 2 x 17): a new length up to
    that is written into the running DSP (no compile); one beyond it compiles. Each time the host plays
    FAUST's own render of the new code, not the old one."""
    live = publisher(tmp_path / "live.dsp")
    first, within, beyond = fdn_code((17, 23), 0.7, 0.5), fdn_code((64, 19), 0.7, 0.5), fdn_code((65, 19), 0.7, 0.5)
    live.publish(first)
    h = Host(host_binary, live.path, "--backend", backend)
    try:
        h.wait(1)
        assert h.ask("set /adac/level 0.5") == "ok"
        assert h.ask("input noise 0.5") == "ok"
        h.ask("run 4096")  # the lines hold a tail when the length changes
        live.publish(within)
        h.wait(2)
        status = h.status()
        assert (status["compiles"], status["updates"], status["failures"]) == (1, 1, 0), status
        got = h.settle_and_impulse(2000)
        want = render_impulse_responses(within, FS, 2000, params={"/adac/level": 0.5})
        assert close(got, want) <= FLOAT32_TOL
        assert close(got, render_impulse_responses(first, FS, 2000, params={"/adac/level": 0.5})) > 1e-2
        live.publish(beyond)  # 65 > 64: the line has no room, a compile
        h.wait(3)
        status = h.status()
        assert (status["compiles"], status["updates"], status["failures"]) == (2, 1, 0), status
        want = render_impulse_responses(beyond, FS, 2000, params={"/adac/level": 0.5})
        assert close(h.settle_and_impulse(2000), want) <= FLOAT32_TOL
    finally:
        h.quit()


def sliders_code(level: float, mix: float, gain: float, note: str, name: str = "sliders") -> str:
    """Two sliders (/adac/level, /adac/mix) whose defaults, ranges and a `declare adac_note` move with a float."""
    return f"""declare name "{name}";
declare adac_note "{note}";
import("stdfaust.lib");
level = hgroup("adac", hslider("level [unit:x]", {level!r}, 0, {2 * level!r}, 0.001));
mix = hgroup("adac", hslider("mix", {mix!r}, 0, 1, 0.001));
process = _ <: (@(3) : *({gain!r})), *(mix) :> *(level);
"""


def test_new_slider_defaults_and_metadata_are_an_update_and_play_where_no_value_was_set(host_binary, tmp_path):
    """A slider's default and range and adac's own `declare` strings are not structure: an update, and a
    parameter never set plays the new default (a set one keeps its value). `declare name` is structure."""
    live = publisher(tmp_path / "live.dsp")
    first, second = sliders_code(1.0, 0.5, 0.5, "1.0"), sliders_code(1.5, 0.75, 0.25, "1.5")
    live.publish(first)
    h = Host(host_binary, live.path)
    try:
        h.wait(1)
        assert h.ask("set /adac/mix 0.25") == "ok"
        live.publish(second)
        h.wait(2)
        status = h.status()
        assert (status["compiles"], status["updates"], status["failures"]) == (1, 1, 0), status
        assert h.ask("get /adac/level") == "value 1.5" and h.ask("get /adac/mix") == "value 0.25"
        got = h.settle_and_impulse(100)
        assert close(got, render_impulse_responses(second, FS, 100, params={"/adac/mix": 0.25})) <= FLOAT32_TOL
        # the old default would play another response
        old_default = render_impulse_responses(second, FS, 100, params={"/adac/mix": 0.25, "/adac/level": 1.0})
        assert close(got, old_default) > 1e-2
        live.publish(sliders_code(1.5, 0.75, 0.25, "1.5", name="renamed"))
        h.wait(3)
        assert h.status()["compiles"] == 2
    finally:
        h.quit()


def test_a_constant_the_code_needs_fixed_falls_back_to_a_plain_compile(host):
    h, live = host
    code = 'import("stdfaust.lib");\nd = 10.0 * 2;\nprocess = _ <: _, @(d) :> *(0.5);\n'  # 10.0 feeds a delay length
    live.publish(code)
    h.wait(2)
    status = h.status()
    assert status["lifted"] == 0 and status["failures"] == 0
    assert close(h.settle_and_impulse(100), render_impulse_responses(code, FS, 100)) <= FLOAT32_TOL



def test_constants_of_a_definition_process_never_reaches_have_no_control_and_are_no_error(host):
    """FAUST drops the widgets of code `process` does not use (a built .dsp's other-rate lowerings
    `adac_process_<rate>`), so the hidden controls of their lifted constants do not exist."""
    h, live = host

    def code(feedback: float, unused: float) -> str:
        return comb(9, feedback, 3) + f"adac_process_96000 = _ * {unused!r} : + ~ *({unused!r});\n"

    live.publish(code(0.5, 0.25))  # new structure (the fixture's code has no second definition): a compile
    h.wait(2)
    live.publish(code(0.4, 0.3))   # a used and an unused constant move: an update
    h.wait(3)
    status = h.status()
    assert (status["compiles"], status["updates"], status["lifted"], status["failures"]) == (2, 1, 1, 0), status
    got = h.settle_and_impulse(300)
    assert close(got, render_impulse_responses(code(0.4, 0.3), FS, 300)) <= FLOAT32_TOL
    assert close(got, render_impulse_responses(code(0.5, 0.25), FS, 300)) > 1e-2

def status_file(path, condition, timeout=10.0):
    """The host's status file once it satisfies ``condition`` (None if it never does within ``timeout``):
    wait for what is checked instead of assuming when another process's file is written."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            report = None
        if (report is not None and condition(report)) or time.monotonic() > deadline:
            return report
        time.sleep(0.005)


def test_broken_code_keeps_the_old_dsp_and_reports(host, tmp_path):
    h, live = host
    good = h.impulse(200)
    live.publish("process = this is not faust;\n")
    assert h.ask("waitfail 1 10000") == "ok"
    status = h.status()
    assert status["failures"] == 1 and status["reloads"] == 1 and status["error"]
    report = status_file(tmp_path / "status.json", lambda r: r["failures"] >= 1)
    assert report["ok"] is False and report["failures"] == 1 and report["last_error"]
    assert np.array_equal(h.settle_and_impulse(200), good)
    live.publish(comb(11, 0.3, 2))  # and the next good code plays
    h.wait(2)
    assert close(h.settle_and_impulse(200), render_impulse_responses(comb(11, 0.3, 2), FS, 200)) <= FLOAT32_TOL
    assert status_file(tmp_path / "status.json", lambda r: r["reloads"] >= 2)["ok"] is True
    assert "adac hot reload" in h.quit()  # the error went to stderr too


def test_a_different_channel_count_is_refused(host):
    h, live = host
    good = h.impulse(100)
    live.publish('process = _ <: _, _;\n')
    assert h.ask("waitfail 1 10000") == "ok"
    assert "outputs" in h.status()["error"]
    assert np.array_equal(h.settle_and_impulse(100), good)


def test_deleted_file_is_survived(host):
    h, live = host
    good = h.impulse(200)
    live.path.unlink()
    time.sleep(0.1)
    assert np.array_equal(h.settle_and_impulse(200), good)
    live.publish(comb(9, 0.5, 3))  # the same code reappears: nothing to do
    time.sleep(0.1)
    assert h.status()["reloads"] == 1
    live.publish(comb(11, 0.3, 2))
    h.wait(2)
    assert close(h.settle_and_impulse(200), render_impulse_responses(comb(11, 0.3, 2), FS, 200)) <= FLOAT32_TOL


def test_a_flood_of_publishes_ends_on_the_newest_without_backlog(host):
    h, live = host
    # every one a structural change, a compile each: delays shorter than 16 samples are not lifted
    codes = [comb(5 + i // 10, 0.5, 1 + i % 10) for i in range(50)]
    for code in codes:
        assert live.publish(code)
    deadline = time.monotonic() + 30
    want = render_impulse_responses(codes[-1], FS, 400)
    while close(h.settle_and_impulse(400), want) > FLOAT32_TOL:
        assert time.monotonic() < deadline, f"the host never settled on the newest code: {h.status()}"
        time.sleep(0.05)
    status = h.status()
    assert status["compiles"] < 1 + len(codes) // 2, status  # intermediate versions were skipped, not compiled
    live.publish(comb(13, 0.25, 2))  # one more: the next compile is this one, nothing was queued behind the newest
    h.wait(status["reloads"] + 1)
    assert h.status()["compiles"] == status["compiles"] + 1, (status, h.status())
    assert close(h.settle_and_impulse(400), render_impulse_responses(comb(13, 0.25, 2), FS, 400)) <= FLOAT32_TOL


# --- IR documents: the publisher's models, played by the runtime ---------------------------------


def runtime_impulse(document: str, n: int, params=None, fs: int = FS) -> np.ndarray:
    """The runtime's own render of ``document`` (its render driver, ``--model``; float, as the host's runtime
    instances play): impulse responses."""
    return impulse_responses(document_renderer(document), fs, n, params=params)


def runtime_signal(document: str, x: np.ndarray, params=None) -> np.ndarray:
    return process_signal(document_renderer(document), FS, x, params=params)


def runtime_settled_impulse(document: str, n: int, params, heard=None) -> np.ndarray:
    """What ``Host.settle_and_impulse(n)`` records from a mono-input runtime instance that has heard ``heard`` (samples,
    1 column) since it was built: a parameter set by address glides from the model's default from the instance's
    first sample (the runtime's smoothing, as in the FAUST backend), in the renderer as in the host."""
    heard = np.zeros((0, 1)) if heard is None else heard
    x = np.concatenate([heard, np.zeros((8192, 1)), np.eye(n, 1)])
    return runtime_signal(document, x, params)[-n:, :, None]


def training_step(model, factor: float = 0.97) -> None:
    """Gains, matrix and filter coefficients move; the delay lengths stay."""
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "param") and "Delay" not in type(module).__name__:
                module.param.mul_(factor)


def delay_module(model):
    return next(m for m in model.modules() if type(m).__name__ == "parallelDelay")


def test_a_flamo_model_through_the_publisher(host_binary, tmp_path):
    """The publisher's document plays as the runtime renders it and as FLAMO computes it; a training step is a
    values update (no compile, no new instance), after which the host plays the new model, and the trained T60
    it moved is the rt60 control's new default (never set, so it plays)."""
    model = fdn(4, t60=0.05, direct=False, n_out=1)
    live = HotReload(FS, name="live", controls={"dry_wet": True, "rt60": True}, path=tmp_path / "live.json",
                     min_interval_s=0, trained_every_s=0)
    assert live.update(model, step=1)
    h = Host(host_binary, live.path)
    try:
        h.wait(1)
        status = h.status()
        assert (status["tier"], status["runtime"], status["compiles"], status["lifted"]) == ("runtime", 1, 1, 0), status
        first = h.impulse(2000)
        assert close(first, runtime_impulse(published(live.path), 2000)) <= FLOAT32_TOL
        assert close(first, flamo_reference(model, 2000)[0]) <= FLOAT32_TOL
        trained = float(h.ask("get /adac/rt60").split()[1])
        training_step(model)
        assert live.update(model, step=2)
        h.wait(2)
        status = h.status()
        assert (status["compiles"], status["updates"], status["failures"]) == (1, 1, 0), status
        assert [e[3] for e in h.history()] == ["compile", "update"]
        got = h.settle_and_impulse(2000)
        assert close(got, runtime_impulse(published(live.path), 2000)) <= FLOAT32_TOL
        assert close(got, flamo_reference(model, 2000)[0]) <= FLOAT32_TOL
        assert close(got, first) > 1e-3  # the update changed what plays
        now = float(h.ask("get /adac/rt60").split()[1])
        want = json.loads(published(live.path))["realisation"]["controls"]["rt60"]["default"]
        assert now == pytest.approx(want, rel=1e-6) and now != pytest.approx(trained, rel=1e-6)
    finally:
        h.quit()


def test_a_structure_change_crossfades_to_the_new_model_and_keeps_the_sliders(host_binary, tmp_path):
    small, large = fdn(4, t60=0.05, direct=False, n_out=1), fdn(6, t60=0.08, direct=False, n_out=1)
    live = HotReload(FS, name="live", controls={"dry_wet": True}, path=tmp_path / "live.json", min_interval_s=0)
    assert live.update(small)
    a = published(live.path)
    h = Host(host_binary, live.path)
    try:
        h.wait(1)
        assert h.ask("set /adac/dry_wet 0.3") == "ok"
        params = {"/adac/dry_wet": 0.3}
        assert h.ask("input sine 300 0.5") == "ok"
        before = h.record(2000)
        assert live.update(large) and live.extractor.extractions == 2
        b = published(live.path)
        h.wait(2)
        after = h.record(2000)  # the swap starts at its first block
        x = sine(300, 0.5, 4000)[:, None]
        old = runtime_signal(a, x, params)  # the old instance played on through the fade...
        new = runtime_signal(b, x[2000:], params)  # ...the new one started from silence at the swap
        assert close(before, old[:2000]) <= FLOAT32_TOL
        assert close(after, crossfaded(old[2000:], new, 480)) <= FLOAT32_TOL
        status = h.status()
        assert (status["compiles"], status["updates"], status["tier"]) == (2, 0, "runtime"), status
        assert h.ask("get /adac/dry_wet") == "value 0.3"
        assert close(h.settle_and_impulse(1000), runtime_settled_impulse(b, 1000, params, x[2000:])) <= FLOAT32_TOL
    finally:
        h.quit()


def test_a_longer_delay_is_an_update_within_the_lines_capacity_and_a_new_instance_beyond(host_binary, tmp_path):
    model = fdn(4, t60=0.05, direct=False, n_out=1, delays=[61, 67, 71, 73])
    live = HotReload(FS, name="live", path=tmp_path / "live.json", min_interval_s=0)
    assert live.update(model)
    h = Host(host_binary, live.path)
    try:
        h.wait(1)
        for reloads, lengths, kind in ((2, [63, 67, 71, 73], "update"), (3, [200, 67, 71, 73], "compile"),
                                       (4, [230, 67, 71, 79], "update")):
            set_delays_samples(delay_module(model), lengths)
            assert live.update(model)
            h.wait(reloads)
            assert h.history()[-1][3] == kind, (lengths, h.history())
            got = h.settle_and_impulse(3000)
            assert close(got, runtime_impulse(published(live.path), 3000)) <= FLOAT32_TOL
            assert close(got, flamo_reference(model, 3000)[0]) <= FLOAT32_TOL
        assert h.status()["failures"] == 0 and live.extractor.extractions == 1
    finally:
        h.quit()


def test_runtime_models_in_the_history_are_auditioned_and_a_rate_change_compiles_nothing(host_binary, tmp_path):
    model = fdn(4, t60=0.05, direct=False, n_out=1)
    live = HotReload(FS, name="live", controls={"dry_wet": True}, path=tmp_path / "live.json", min_interval_s=0)
    documents, h = [], None
    try:
        for step in range(1, 4):  # two values updates after the first load
            assert live.update(model, step=10 * step)
            documents.append(published(live.path))
            h = h or Host(host_binary, live.path)
            h.wait(step)
            training_step(model, 0.9)
        assert [(e[1], e[3]) for e in h.history()] == [("10", "compile"), ("20", "update"), ("30", "update")]
        assert h.ask("set /adac/dry_wet 0.5") == "ok"
        params = {"/adac/dry_wet": 0.5}
        for pin in (1, 2):
            assert h.ask(f"audition pin {pin}") == "ok" and h.status()["audition"] == f"pin:{pin}"
            assert close(h.settle_and_impulse(1000), runtime_settled_impulse(documents[pin - 1], 1000, params)) \
                <= FLOAT32_TOL  # a fresh instance of the entry's model, the parameters as set now
        assert h.ask("audition live") == "ok"
        assert close(h.settle_and_impulse(1000), runtime_settled_impulse(documents[2], 1000, params)) <= FLOAT32_TOL
        assert h.ask("rate 44100") == "ok"
        got = h.impulse(1000)
        assert close(got, runtime_impulse(documents[2], 1000, params, fs=44100)) <= FLOAT32_TOL
        assert h.status()["compiles"] == 1
    finally:
        if h is not None:
            h.quit()


def test_a_refused_document_keeps_the_model_playing_and_names_the_node(host, tmp_path):
    h, live = host  # plays FAUST code (comb); a document replaces it (a new instance), then a bad one is refused
    document = runtime_document(adac.flamo_to_json(fdn(4, t60=0.05, direct=False, n_out=1), FS), None)
    live.publish(document)
    h.wait(2)
    assert h.status()["tier"] == "runtime"
    playing = h.settle_and_impulse(500)
    bad = copy.deepcopy(document)
    bad["graph"]["children"][1]["feedforward"]["kind"] = "warp_drive"
    live.publish(bad)
    assert h.ask("waitfail 1 60000") == "ok"
    status = h.status()
    assert "core.1.feedforward" in status["error"] and status["failures"] == 1 and status["reloads"] == 2, status
    assert close(h.settle_and_impulse(500), playing) <= FLOAT32_TOL  # the old model plays on
    live.publish("{ not json")
    assert h.ask("waitfail 2 60000") == "ok" and "IR document" in h.status()["error"]


@pytest.fixture(scope="module")
def tsan_host_binary():
    return build_host(targets=("cli",), sanitize="thread")["cli"]


def test_a_flood_of_documents_under_thread_sanitizer(tsan_host_binary, tmp_path):
    """Values updates and structure changes published as fast as the publisher can while the host plays and its
    parameters move: ThreadSanitizer (the host, engine and runtime built with -fsanitize=thread) reports nothing,
    and the host ends on the newest model."""
    documents = [runtime_document(adac.flamo_to_json(fdn(n, t60=0.05, direct=False, n_out=1), FS, name="live"),
                                  {"dry_wet": True, "rt60": True}) for n in (4, 6)]
    live = HotReload(FS, path=tmp_path / "live.json")

    def version(k: int) -> dict:  # every 5th a structure change; the others move the input gains
        document = copy.deepcopy(documents[(k // 5) % 2])
        gain = document["graph"]["children"][0]
        gain["matrix"] = [[v * (1 - 0.002 * k) for v in row] for row in gain["matrix"]]
        return document

    live.publish(version(0), step=0)
    linked = subprocess.run(["ldd", str(tsan_host_binary)], capture_output=True, text=True, check=True).stdout
    assert "libtsan" in linked  # the sanitizer is in (a host without it would report nothing)
    env = {**os.environ, "TSAN_OPTIONS": "halt_on_error=1 exitcode=66"}
    with CommandLineHost(live.path, FS, "--poll-ms", "1", "--block", "64", binary=tsan_host_binary, env=env) as h:
        h.wait(1)
        assert h.ask("input noise 0.1") == "ok"
        done = threading.Event()

        def flood():
            for k in range(1, 60):
                live.publish(version(k), step=k)
            done.set()

        publisher_thread = threading.Thread(target=flood)
        publisher_thread.start()
        k = 0
        while not done.is_set() or k < 20:
            assert h.ask(f"set /adac/dry_wet {0.2 + 0.05 * (k % 10):.2f}") == "ok"
            assert h.ask(f"set /adac/rt60 {0.03 + 0.01 * (k % 7):.3f}") == "ok"
            assert h.ask("run 1000") == "ok"
            if k == 10:
                assert h.ask("audition pin 1") == "ok" and h.ask("run 500") == "ok" and h.ask("audition live") == "ok"
            k += 1
        publisher_thread.join()
        last = published(live.path)
        while h.history()[-1][1] != "59":  # the newest publish reaches the host (no backlog)
            assert h.status()["failures"] == 0, h.status()
            h.ask(f"wait {h.status()['reloads'] + 1} 100")
        status = h.status()
        assert status["failures"] == 0 and status["compiles"] >= 2 and status["updates"] >= 1, status
        # the parameters back at the model's defaults, their glides (which in float stop short of a target away from
        # the default, where depends on the way there) and the tail long settled: the newest model, as rendered
        controls = json.loads(last)["realisation"]["controls"]
        for name in ("dry_wet", "rt60"):
            assert h.ask(f"set /adac/{name} {controls[name]['default']!r}") == "ok"
        assert h.ask("input silence") == "ok" and h.ask("run 32768") == "ok"
        assert close(h.impulse(500), runtime_impulse(last, 500)) <= FLOAT32_TOL
        assert h.close(timeout=120) == 0, h.stderr()  # 66: ThreadSanitizer found a race (halt_on_error)
        assert "WARNING: ThreadSanitizer" not in h.stderr()


# --- the shipped example ----------------------------------------------------------------------

# Samples of each impulse response of the shipped example: 1 s; the host's 4 s of silence between two
# inputs' impulses take the previous input's tail (T60 ~1.5 s) far below 1e-6 of the peak (-60 dB per T60).
EXAMPLE_IR_SAMPLES = FS


@pytest.fixture(scope="module")
def shipped_example():
    """The shipped example (plugins/AdacFDN) as `scons -Q STEPS=ir,dsp plugins/AdacFDN` builds it.

    Returns (manifest, ir: dict, code: str of build/AdacFDN/AdacFDN.dsp: ``process`` at fs and the
    other-rate lowerings ``adac_process_<rate>``, which ``process`` never reaches).
    """
    proc = subprocess.run(["scons", "-Q", "STEPS=ir,dsp", "plugins/AdacFDN"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = load_manifest(ROOT / "plugins" / "AdacFDN" / "plugin.yaml")
    assert manifest.fs == FS
    out = ROOT / "build" / "AdacFDN"
    return manifest, load_ir(out / "AdacFDN.json"), (out / "AdacFDN.dsp").read_text()


@functools.lru_cache(maxsize=None)
def faust_impulse_responses(code: str) -> np.ndarray:
    """FAUST's own render (C++ backend) of ``code``: (EXAMPLE_IR_SAMPLES, n_out, n_in); one per code text."""
    return render_impulse_responses(code, FS, EXAMPLE_IR_SAMPLES)


def scaled_example_ir(ir: dict, factor: float) -> dict:
    """A training step on the IR: the reverberator's input gains (core.branchA.input_gain) times ``factor``."""
    ir = copy.deepcopy(ir)
    nodes = [ir["graph"]]
    while nodes:
        node = nodes.pop()
        if node.get("path") == "core.branchA.input_gain":
            node["matrix"] = (np.asarray(node["matrix"], dtype=float) * factor).tolist()
            return ir
        nodes.extend(node.get("children", []))
    raise AssertionError("the example's IR has no core.branchA.input_gain")


def example_training_step(model) -> None:
    """A training step of the shipped example's reverberator: its input and output gains."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(("branchA.input_gain", "branchA.output_gain")):
                module.param.mul_(0.97)


def test_the_shipped_example_through_the_publisher_plays_as_the_runtime_renders_it(host_binary, shipped_example,
                                                                                   tmp_path):
    """The example model (its manifest's controls) through HotReload: the host plays the runtime's render of the
    published document; a training step is a values update that plays the new model."""
    manifest, _, _ = shipped_example
    model = load_model(manifest)
    live = HotReload(manifest.fs, name=manifest.name, controls=manifest.controls, path=tmp_path / "live.json",
                     min_interval_s=0)
    assert live.update(model)
    first = published(live.path)
    h = Host(host_binary, live.path)
    try:
        h.wait(1, 60000)
        assert (h.status()["tier"], h.status()["failures"]) == ("runtime", 0)
        got = h.settle_and_impulse(EXAMPLE_IR_SAMPLES)
        assert close(got, runtime_impulse(first, EXAMPLE_IR_SAMPLES)) <= FLOAT32_TOL
        example_training_step(model)
        assert live.update(model)
        second = published(live.path)
        h.wait(2, 60000)
        status = h.status()
        assert (status["updates"], status["compiles"], status["failures"]) == (1, 1, 0), status
        got = h.settle_and_impulse(EXAMPLE_IR_SAMPLES)
        assert close(got, runtime_impulse(second, EXAMPLE_IR_SAMPLES)) <= FLOAT32_TOL
        assert close(got, runtime_impulse(first, EXAMPLE_IR_SAMPLES)) > 1e-3  # the update changed what plays
    finally:
        h.quit()


@pytest.mark.parametrize("backend", ["llvm", "interpreter", "tiered"])
@pytest.mark.parametrize("source", ["scons", "faust"])
def test_the_shipped_example_plays_exactly_and_takes_constant_updates(host_binary, shipped_example, tmp_path, backend,
                                                                      source):
    """The example's real .dsp (every rate's lowering in it) and the FAUST code of the example model (a hand-written
    .dsp as far as the host knows) load with every backend, play FAUST's own impulse response, and a constant-only
    republish is an update."""
    manifest, ir, built = shipped_example
    path = tmp_path / "live.dsp"
    if source == "scons":
        emit = functools.partial(json_to_faust, controls=manifest.controls or None, rates=manifest.lowered_rates,
                                 **manifest.codegen_options)
        assert emit(ir) == built  # the scons step's generator: the republish below is what a rebuild writes
        live = publisher(path)
        live.publish(built)
        republish = functools.partial(live.publish, emit(scaled_example_ir(ir, 0.9)))
    else:
        model = load_model(manifest)
        live = HotReload(manifest.fs, name=manifest.name, path=path, min_interval_s=0,
                         emit=functools.partial(adac.flamo_to_faust, fs=manifest.fs, name=manifest.name,
                                                controls=manifest.controls))
        assert live.update(model)

        def republish():
            example_training_step(model)
            assert live.update(model)
    first = published(path)
    tiers = ["interpreter", "llvm"] if backend == "tiered" else [backend]
    h = Host(host_binary, path, "--backend", backend, *(["--promote", "manual"] if backend == "tiered" else []))
    try:
        h.wait(1, 60000)
        for tier in tiers:
            if tier == "llvm" and backend == "tiered":
                assert h.ask("promote 120000") == "ok", h.status()
            status = h.status()
            assert (status["tier"], status["lifted"], status["failures"]) == (tier, 1, 0), status
            got = h.settle_and_impulse(EXAMPLE_IR_SAMPLES)
            assert close(got, faust_impulse_responses(first)) <= FLOAT32_TOL, tier
        compiles = h.status()["compiles"]
        republish()
        second = published(path)
        assert second != first
        h.wait(2, 60000)
        status = h.status()
        assert (status["updates"], status["compiles"], status["failures"]) == (1, compiles, 0), status
        got = h.settle_and_impulse(EXAMPLE_IR_SAMPLES)
        assert close(got, faust_impulse_responses(second)) <= FLOAT32_TOL
        assert close(got, faust_impulse_responses(first)) > 1e-3  # the update changed what plays
    finally:
        h.quit()

@pytest.mark.juce
def test_the_plugin_builds_and_loads(tmp_path):
    pedalboard = pytest.importorskip("pedalboard")
    built = build_host(targets=("cli", "plugin"))
    assert built["vst3"].exists() and built["standalone"].exists()
    # one JUCE modules library for every plugin and host: the hot-reload plugin is a project of the shared
    # tree, links adac_juce_modules and compiles none of JUCE's module sources itself
    tree = ROOT / "build" / "juce-build"
    assert built["vst3"].resolve().is_relative_to(tree.resolve())
    own_objects = [p.name for p in (tree / "plugins" / "AdacHotReload").rglob("*.o")]
    assert own_objects and not [o for o in own_objects if re.match(r"juce_(core|events|graphics|gui_basics|audio_basics)", o)]
    live = publisher(tmp_path / "live.dsp")
    code = 'import("stdfaust.lib");\nprocess = _ * hgroup("adac", hslider("dry_wet", 1, 0, 1, 0.001)) * 0.5 <: _, _;\n'
    live.publish(code, step=1)
    os.environ["ADAC_HOTRELOAD_PATH"] = str(live.path)
    try:
        plugin = pedalboard.load_plugin(str(built["vst3"]))
        audio = np.zeros((2, 4096), dtype=np.float32)
        audio[:, 0] = 1
        out = plugin(audio, FS)
        assert abs(out[0, 0] - 0.5) < 1e-6 and abs(out[1, 0] - 0.5) < 1e-6
        status_path = tmp_path / "live.dsp.status.json"
        status = status_file(status_path, lambda r: r["reloads"] >= 1)
        assert status["ok"] and status["reloads"] >= 1 and status["backend"] == "tiered"  # the plugin's default
        # a sample-rate change re-initialises the DSP; nothing is compiled again
        out = plugin(audio, 44100)
        assert abs(out[0, 0] - 0.5) < 1e-6 and abs(out[1, 0] - 0.5) < 1e-6
        assert status_file(status_path, lambda r: r["compiles"] == 1)["compiles"] == 1
        # the audition parameter: bypass plays the dry input (both outputs take the mono DSP's input, the left)
        assert plugin.parameters["audition"].valid_values == ["live", "pinned", "bypass"]
        plugin.audition = "bypass"
        noise = np.random.default_rng(1).standard_normal((1, 8192)).astype(np.float32).repeat(2, axis=0)
        plugin(noise[:, :512], 44100, reset=False)  # the audio thread hands the request to the engine
        assert status_file(status_path, lambda r: r["audition"] == "bypass")["tier"] == "bypass"
        out = plugin(noise, 44100, reset=False)
        assert np.array_equal(out[:, 1000:], noise[:, 1000:])  # past the 10 ms crossfade: the dry input
        plugin.audition = "live"
        plugin(noise[:, :512], 44100, reset=False)
        assert status_file(status_path, lambda r: r["audition"] == "live")["audition"] == "live"
        plugin(np.zeros((2, 2048), dtype=np.float32), 44100, reset=False)  # through the crossfade
        out = plugin(audio, 44100, reset=False)
        assert abs(out[0, 0] - 0.5) < 1e-6 and abs(out[1, 0] - 0.5) < 1e-6  # the DSP again
        # a training step (a coefficient) plays live; "pinned" + "pinned step" 1 plays step 1's model again
        live.publish(code.replace("* 0.5", "* 0.25"), step=2)
        assert status_file(status_path, lambda r: r["updates"] >= 1)["updates"] == 1
        out = plugin(audio, 44100, reset=False)
        assert abs(out[0, 0] - 0.25) < 1e-6
        plugin.pinned_step = 1
        plugin.audition = "pinned"
        plugin(noise[:, :512], 44100, reset=False)
        assert status_file(status_path, lambda r: r["audition"] == "pin:1")["audition"] == "pin:1"
        plugin(np.zeros((2, 2048), dtype=np.float32), 44100, reset=False)  # through the crossfade
        out = plugin(audio, 44100, reset=False)
        assert abs(out[0, 0] - 0.5) < 1e-6 and abs(out[1, 0] - 0.5) < 1e-6
    finally:
        del os.environ["ADAC_HOTRELOAD_PATH"]


# --- tiered compilation, A/B history, sample-rate changes ----------------------------------------------


def sine(hz: float, amp: float, n: int) -> np.ndarray:
    """The host's `input sine HZ AMP` signal, first n samples (float32 like the host's buffers)."""
    return (amp * np.sin(2 * np.pi * hz * np.arange(n) / FS)).astype(np.float32).astype(float)


def crossfaded(old: np.ndarray, new: np.ndarray, fade: int) -> np.ndarray:
    """The engine's documented crossfade: sample k of the switch is (1 - a) old + a new, a = min(k, fade) / fade."""
    a = np.minimum(np.arange(len(old)), fade)[:, None] / fade
    return (1 - a) * old + a * new


def test_tiered_plays_the_interpreter_then_llvm_continuously(host_binary, tmp_path):
    live = publisher(tmp_path / "live.dsp")
    code = fdn_code((17, 23), 0.7, 0.5)
    live.publish(code)
    h = Host(host_binary, live.path, "--backend", "tiered", "--promote", "manual")
    try:
        h.wait(1)
        assert h.status()["tier"] == "interpreter" and h.status()["backend"] == "tiered"
        assert h.ask("set /adac/level 0.5") == "ok"
        assert h.ask("input sine 440 0.5") == "ok"
        first = h.record(3000)  # the interpreter build, 3000 samples
        assert h.status()["tier"] == "interpreter"
        assert h.ask("promote 60000") == "ok"
        assert h.status()["tier"] == "llvm"
        second = h.record(3000)  # the crossfade to the LLVM build (fresh state) and on
        x = sine(440, 0.5, 6000)[:, None]
        params = {"/adac/level": 0.5}
        kept = render_signal(code, FS, x, params=params)         # the interpreter instance had it played on
        fresh = render_signal(code, FS, x[3000:], params=params)  # the LLVM instance starts at the swap
        assert close(first, kept[:3000]) <= FLOAT32_TOL
        assert close(second, crossfaded(kept[3000:], fresh, 480)) <= FLOAT32_TOL
        # the same as a host that only ever had the LLVM build
        after = h.settle_and_impulse(1000)
        assert close(after, render_impulse_responses(code, FS, 1000, params=params)) <= FLOAT32_TOL
        pure = Host(host_binary, live.path, "--backend", "llvm")
        try:
            pure.wait(1)
            assert pure.ask("set /adac/level 0.5") == "ok"
            assert close(after, pure.impulse(1000)) <= FLOAT32_TOL
        finally:
            pure.quit()
        status = h.status()
        assert status["compiles"] == 1 and status["failures"] == 0
    finally:
        h.quit()


def test_tiered_keeps_parameters_across_both_swaps(host_binary, tmp_path):
    live = publisher(tmp_path / "live.dsp")
    a, b = comb(9, 0.5, 3), comb(7, -0.25, 5)
    live.publish(a)
    h = Host(host_binary, live.path, "--backend", "tiered", "--promote", "manual")
    try:
        h.wait(1)
        assert h.ask("set /adac/dry_wet 0.25") == "ok"
        live.publish(b)  # a structural change: B's interpreter build replaces A
        h.wait(2)
        want = render_impulse_responses(b, FS, 400, params={"/adac/dry_wet": 0.25})
        assert h.status()["tier"] == "interpreter"
        assert close(h.settle_and_impulse(400), want) <= FLOAT32_TOL
        assert h.ask("promote 60000") == "ok"  # and B's LLVM build replaces that
        assert h.status()["tier"] == "llvm"
        assert close(h.settle_and_impulse(400), want) <= FLOAT32_TOL
        assert h.ask("get /adac/dry_wet") == "value 0.25"
    finally:
        h.quit()


def test_a_coefficient_update_during_the_interpreter_tier_reaches_the_llvm_build(host_binary, tmp_path):
    live = publisher(tmp_path / "live.dsp")
    versions = [fdn_code((17, 23), 0.7 + 0.05 * i, 0.5 - 0.05 * i) for i in range(3)]
    live.publish(versions[0])
    h = Host(host_binary, live.path, "--backend", "tiered", "--promote", "manual")
    try:
        h.wait(1)
        live.publish(versions[1])  # the LLVM build compiles versions[0]'s code; this only moves its constants
        h.wait(2)
        status = h.status()
        assert status["compiles"] == 1 and status["updates"] == 1 and status["tier"] == "interpreter"
        assert close(h.settle_and_impulse(1000), render_impulse_responses(versions[1], FS, 1000)) <= FLOAT32_TOL
        assert h.ask("promote 60000") == "ok"
        got = h.settle_and_impulse(1000)
        assert close(got, render_impulse_responses(versions[1], FS, 1000)) <= FLOAT32_TOL
        assert close(got, render_impulse_responses(versions[0], FS, 1000)) > 1e-2
    finally:
        h.quit()
    # automatic promotion, an update published right behind the first load: whichever comes first
    # (the LLVM build or the update), LLVM ends up playing the update's values
    live = publisher(tmp_path / "auto.dsp")
    live.publish(versions[0])
    h = Host(host_binary, live.path, "--backend", "tiered")
    try:
        h.wait(1)
        live.publish(versions[2])
        h.wait(2)
        assert h.ask("waittier llvm 60000") == "ok"
        assert close(h.settle_and_impulse(1000), render_impulse_responses(versions[2], FS, 1000)) <= FLOAT32_TOL
        assert h.status()["compiles"] == 1
    finally:
        h.quit()


def test_history_lists_the_tag_lines_and_stays_bounded(host_binary, tmp_path):
    live = publisher(tmp_path / "live.dsp")
    publishes = [  # the publisher's tag line (step, loss) first
        (fdn_code((17, 23), 0.7, 0.5), dict(step=3, loss=0.25)),
        (fdn_code((17, 23), 0.6, 0.5), dict(step=4, loss=float("nan"))),  # floats only: the fast path
        (fdn_code((65, 23), 0.6, 0.5), {}),               # a delay beyond its capacity (64): a compile
        (fdn_code((65, 23), 0.5, 0.5), dict(step=12)),
        (fdn_code((65, 23), 0.4, 0.5), dict(loss=1e-05)),
    ]
    h = None
    try:
        for count, (code, tags) in enumerate(publishes, start=1):
            assert live.publish(code, **tags)
            assert live.path.read_text().startswith("// adac-publish")
            h = h or Host(host_binary, live.path)
            h.wait(count)
        assert h.history() == [("1", "3", "0.25", "compile"), ("2", "4", "nan", "update"), ("3", "-", "-", "compile"),
                               ("4", "12", "-", "update"), ("5", "-", "1e-05", "update")]
        status = h.status()
        assert status["compiles"] == 2 and status["updates"] == 3
        # the tag line is not part of the program: the response is the untagged code's
        want = render_impulse_responses(fdn_code((65, 23), 0.4, 0.5), FS, 1000)
        assert close(h.settle_and_impulse(1000), want) <= FLOAT32_TOL
        for i in range(40):  # bounded: the last 32 publishes
            live.publish(fdn_code((65, 23), 0.3 + 0.001 * i, 0.5), step=100 + i)
            h.wait(6 + i)
        entries = h.history()
        assert len(entries) == 32 and entries[0][:2] == ("14", "108") and entries[-1][:2] == ("45", "139")
    finally:
        if h is not None:
            h.quit()


def test_audition_pins_entries_and_bypasses(host_binary, tmp_path):
    live = publisher(tmp_path / "live.dsp")
    # the third: a delay beyond the compiled capacity (64), a compile
    versions = [fdn_code((17, 23), 0.7, 0.5), fdn_code((17, 23), 0.5, 0.6), fdn_code((65, 29), 0.6, 0.5)]
    h = None
    try:
        for count, code in enumerate(versions, start=1):
            live.publish(code, step=10 * count)
            if h is None:
                h = Host(host_binary, live.path)
            h.wait(count)
        assert [e[3] for e in h.history()] == ["compile", "update", "compile"]
        assert h.ask("set /adac/level 0.5") == "ok"
        params = {"/adac/level": 0.5}
        for pin in (1, 2):  # each entry's own response, with the parameters as set now
            assert h.ask(f"audition pin {pin}") == "ok" and h.status()["audition"] == f"pin:{pin}"
            want = render_impulse_responses(versions[pin - 1], FS, 1000, params=params)
            assert close(h.settle_and_impulse(1000), want) <= FLOAT32_TOL
        assert h.ask("audition pin 9").startswith("error")
        assert h.status()["audition"] == "pin:2"
        assert h.ask("audition live") == "ok"
        assert close(h.settle_and_impulse(1000), render_impulse_responses(versions[2], FS, 1000, params=params)) <= FLOAT32_TOL

        # switching while a signal plays: the engine's crossfade from the live model to a fresh instance of entry 1
        h.ask("run 8192")  # the live DSP's state has died out
        assert h.ask("input sine 300 0.5") == "ok"
        before = h.record(2000)
        assert h.ask("audition pin 1") == "ok"
        after = h.record(2000)
        x = sine(300, 0.5, 4000)[:, None]
        live_stream = render_signal(versions[2], FS, x, params=params)
        pinned = render_signal(versions[0], FS, x[2000:], params=params)
        assert close(before, live_stream[:2000]) <= FLOAT32_TOL
        assert close(after, crossfaded(live_stream[2000:], pinned, 480)) <= FLOAT32_TOL
        steps = np.abs(np.diff(np.concatenate([before, after]), axis=0)).max()
        assert steps <= np.abs(np.diff(np.concatenate([live_stream, pinned]), axis=0)).max() + np.abs(x).max() * 3 / 480

        # bypass: the dry input, after a crossfade from what played
        assert h.ask("audition bypass") == "ok" and h.status()["tier"] == "bypass"
        fading = h.record(480)
        dry = h.record(1000)
        x = sine(300, 0.5, 5480)[:, None]
        assert np.abs(dry - x[4480:5480]).max() <= 1e-7  # the same float32 samples (up to libm's last bit)
        assert close(fading, crossfaded(render_signal(versions[0], FS, x[2000:4480], params=params)[2000:], x[4000:4480], 480)) \
            <= FLOAT32_TOL
        # a publish while bypassed is recorded, not played; live plays it
        live.publish(fdn_code((65, 29), 0.55, 0.5), step=40)
        h.wait(4)
        assert np.abs(h.record(500) - sine(300, 0.5, 5980)[5480:, None]).max() <= 1e-7
        assert h.ask("input silence") == "ok" and h.ask("audition live") == "ok"
        want = render_impulse_responses(fdn_code((65, 29), 0.55, 0.5), FS, 1000, params=params)
        assert close(h.settle_and_impulse(1000), want) <= FLOAT32_TOL
    finally:
        if h is not None:
            h.quit()


@pytest.mark.parametrize("backend", ["llvm", "tiered"])
def test_a_sample_rate_change_reinitialises_without_compiling(host_binary, tmp_path, backend):
    live = publisher(tmp_path / "live.dsp")
    code = 'import("stdfaust.lib");\nprocess = fi.lowpass(2, hgroup("adac", hslider("cutoff", 1000, 20, 20000, 1))) * 0.8;\n'
    live.publish(code)
    h = Host(host_binary, live.path, "--backend", backend, "--block", "64")  # impulse N > 64: the engine splits
    try:
        h.wait(1)
        if backend == "tiered":  # let the LLVM build take over first: a swap during an impulse would mix two states
            assert h.ask("waittier llvm 60000") == "ok" and h.ask("run 2048") == "ok"
        assert h.ask("set /adac/cutoff 2000") == "ok"
        params = {"/adac/cutoff": 2000}
        assert close(h.impulse(500), render_impulse_responses(code, FS, 500, params=params)) <= FLOAT32_TOL
        assert h.ask("rate 44100") == "ok"
        got = h.impulse(500)
        assert close(got, render_impulse_responses(code, 44100, 500, params=params)) <= FLOAT32_TOL
        assert close(got, render_impulse_responses(code, FS, 500, params=params)) > 1e-2
        assert h.status()["compiles"] == 1
    finally:
        h.quit()
