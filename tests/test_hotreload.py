"""Hot reload: the publisher, and the real reloading host (libfaust) driven from its command line.

The host (``adac-hotreload-render``) processes audio only when told to, so every comparison below
is of exactly known samples: after a publish the test waits for the reload, runs silence through
the crossfade, then records an impulse response and compares it with the same code rendered by
``adac.backends.faust.render`` (FAUST's C++ backend), to 1e-6 of the peak.
"""
import fcntl
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
from adac.hotreload import HotReload, build_host

ROOT = Path(__file__).resolve().parent.parent
from adac.backends.faust.render import render_impulse_responses
from conftest import FLOAT32_TOL
from flamo_models import FS, fdn

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
    assert (tmp_path / "m.dsp").read_text() == comb(9, 0.4, 3)
    assert live.published == 2 and live.steps == 3


def test_throttle_by_steps_and_interval(tmp_path):
    live = publisher(tmp_path / "m.dsp", every_n_steps=3)
    published = [live.update(comb(10 + i, 0.5, 3)) for i in range(7)]
    assert published == [True, False, False, True, False, False, True]
    slow = publisher(tmp_path / "s.dsp", min_interval_s=60)
    assert slow.update(comb(5, 0.5, 3)) and not slow.update(comb(6, 0.5, 3))
    assert slow.update(comb(7, 0.5, 3), force=True)
    assert (tmp_path / "s.dsp").read_text() == comb(7, 0.5, 3)


def test_the_emitter_runs_only_when_a_publish_is_due(tmp_path):
    calls = []
    live = HotReload(FS, path=tmp_path / "m.dsp", every_n_steps=2, min_interval_s=0,
                     emit=lambda model: calls.append(model) or comb(9, 0.5 + 0.01 * len(calls), 3))
    for step in range(6):
        live.update(step)
    assert calls == [0, 2, 4]  # throttled steps cost nothing


def test_default_emitter_is_flamo_to_faust(tmp_path):
    assert hasattr(adac, "flamo_to_faust")
    model = fdn(4, t60=0.05, direct=False, n_out=1)
    live = HotReload(FS, name="live", path=tmp_path / "m.dsp")
    assert live.update(model)
    assert live.path.read_text() == adac.flamo_to_faust(model, FS, name="live")


def test_a_reader_never_sees_half_a_file(tmp_path):
    path = tmp_path / "m.dsp"
    codes = [comb(10 + i, 0.5, 3) + "// " + "x" * (20000 + 37 * i) + "\n" for i in range(200)]
    live = publisher(path)
    live.publish(codes[0])
    known = set(codes)
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(path.read_text())

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
    assert path.read_text() == comb(13, 0.5, 3)  # whole files; the last one wins
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
    assert path.read_text() in set(codes[0]) | set(codes[1])
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
    assert live.path.read_text() == comb(9, round(0.01 * 19 * 2, 6), 3)  # the newest snapshot, not a torn one
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
        build_host(targets=("gui",))


# --- the reloading host ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_binary():
    return build_host(targets=("cli",))["cli"]


class Host:
    def __init__(self, binary, path, *args):
        self.proc = subprocess.Popen([str(binary), str(path), str(FS), *map(str, args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer, f"the host died on {line!r}: {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        return answer

    def wait(self, reloads: int, ms: int = 20000):
        assert self.ask(f"wait {reloads} {ms}") == "ok", self.status()

    def impulse(self, n: int) -> np.ndarray:
        """(n, n_out, n_in), like adac.backends.faust.render.render_impulse_responses."""
        words = self.ask(f"impulse {n}").split()
        assert words[0] == "ir", words[:5]
        n_in, n_out = int(words[1]), int(words[2])
        return np.array(words[3:], dtype=float).reshape(max(1, n_in), n, n_out).transpose(1, 2, 0)

    def settle_and_impulse(self, n: int) -> np.ndarray:
        self.ask("run 8192")  # past any crossfade; the new DSP has heard only silence
        return self.impulse(n)

    def status(self) -> dict:
        words, _, error = self.ask("status").partition("|")
        fields = dict(w.split("=", 1) for w in words.split()[1:])
        out = {k: int(v) for k, v in fields.items() if k not in ("ms", "backend")}
        out.update(ms=float(fields["ms"]), backend=fields["backend"], error=error.strip())
        return out

    def quit(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        self.proc.wait(timeout=10)
        return self.proc.stderr.read()


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
        assert status["ms"] < 20  # an update is a text scan, not a compile
        got = h.settle_and_impulse(2000)
        want = render_impulse_responses(versions[-1], FS, 2000, params={"/adac/level": 0.5})
        assert close(got, want) <= FLOAT32_TOL
        assert close(got, render_impulse_responses(versions[0], FS, 2000, params={"/adac/level": 0.5})) > 1e-2
        assert h.ask("get /adac/level") == "value 0.5"
        # a structural change (a delay length) compiles again
        live.publish(fdn_code((19, 23), 0.7, 0.5))
        h.wait(6)
        assert h.status()["compiles"] == 2
        want = render_impulse_responses(fdn_code((19, 23), 0.7, 0.5), FS, 2000, params={"/adac/level": 0.5})
        assert close(h.settle_and_impulse(2000), want) <= FLOAT32_TOL
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
    codes = [comb(13 + i, 0.5, 3) for i in range(50)]  # every one a structural change: a compile each
    for code in codes:
        assert live.publish(code)
    deadline = time.monotonic() + 30
    want = render_impulse_responses(codes[-1], FS, 400)
    while close(h.settle_and_impulse(400), want) > FLOAT32_TOL:
        assert time.monotonic() < deadline, f"the host never settled on the newest code: {h.status()}"
        time.sleep(0.05)
    compiles = h.status()["compiles"]
    time.sleep(0.5)
    assert h.status()["compiles"] == compiles  # nothing queued behind the newest
    assert compiles < 1 + len(codes) // 2, compiles  # intermediate versions were skipped, not compiled


def test_a_flamo_model_through_the_publisher(host_binary, tmp_path):
    if not hasattr(adac, "flamo_to_faust"):
        pytest.skip("the core compiler (adac.flamo_to_faust) is not there yet")
    model = fdn(4, t60=0.05, direct=False, n_out=1)
    live = HotReload(FS, name="live", path=tmp_path / "live.dsp", min_interval_s=0)
    assert live.update(model)
    h = Host(host_binary, live.path)
    try:
        h.wait(1)
        got = h.impulse(2000)
        assert close(got, render_impulse_responses(live.path.read_text(), FS, 2000)) <= FLOAT32_TOL
        # a training step: gains, matrix and filter coefficients move, the delay lengths stay
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "param") and "Delay" not in type(module).__name__:
                    module.param.mul_(0.97)
        code_before = live.path.read_text()
        assert live.update(model)
        code = live.path.read_text()
        assert code != code_before
        h.wait(2)
        got = h.settle_and_impulse(2000)
        want = render_impulse_responses(code, FS, 2000)
        assert close(got, want) <= FLOAT32_TOL
        status = h.status()
        assert status["failures"] == 0
        # adac's emitter keeps the structure for new coefficients: the update took the no-compile path
        assert status["compiles"] == 1 and status["updates"] == 1, status
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
    live.publish(code)
    os.environ["ADAC_HOTRELOAD_PATH"] = str(live.path)
    try:
        plugin = pedalboard.load_plugin(str(built["vst3"]))
        audio = np.zeros((2, 4096), dtype=np.float32)
        audio[:, 0] = 1
        out = plugin(audio, FS)
        assert abs(out[0, 0] - 0.5) < 1e-6 and abs(out[1, 0] - 0.5) < 1e-6
        status = status_file(tmp_path / "live.dsp.status.json", lambda r: r["reloads"] >= 1)
        assert status["ok"] and status["reloads"] >= 1
    finally:
        del os.environ["ADAC_HOTRELOAD_PATH"]
