"""Hot reload: the publisher, and the real reloading host (libfaust) driven from its command line."""
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import adac
from adac.errors import AdacError
from adac.hotreload import HotReload, build_host
from adac.render import render_impulse_responses
from conftest import FLOAT32_TOL
from flamo_models import FS, fdn

pytestmark = pytest.mark.usefixtures("faust_available")


def comb(delay: int, feedback: float, tap: int) -> str:
    """A small FAUST program with the stable dry_wet address, different per (delay, feedback, tap)."""
    return f"""import("stdfaust.lib");
g = hgroup("adac", hslider("dry_wet", 0.5, 0, 1, 0.001));
process = _ <: (@({tap}) * g), (+ ~ (@({delay}) * {feedback})) :> _;
"""


# --- publisher -----------------------------------------------------------------------------


def test_publishes_only_changes(tmp_path):
    live = HotReload(FS, path=tmp_path / "m.dsp", min_interval_s=0, emit=lambda model: model)
    assert live.update(comb(9, 0.5, 3)) is True
    assert live.update(comb(9, 0.5, 3)) is False  # same code: nothing written
    assert live.update(comb(9, 0.4, 3)) is True
    assert (tmp_path / "m.dsp").read_text() == comb(9, 0.4, 3)
    assert live.published == 2


def test_throttle_by_steps_and_interval(tmp_path):
    live = HotReload(FS, path=tmp_path / "m.dsp", every_n_steps=3, min_interval_s=0, emit=lambda model: model)
    published = [live.update(comb(10 + i, 0.5, 3)) for i in range(7)]
    assert published == [True, False, False, True, False, False, True]
    slow = HotReload(FS, path=tmp_path / "s.dsp", min_interval_s=60, emit=lambda model: model)
    assert slow.update(comb(5, 0.5, 3)) and not slow.update(comb(6, 0.5, 3))
    assert slow.update(comb(7, 0.5, 3), force=True)


def test_a_reader_never_sees_half_a_file(tmp_path):
    path = tmp_path / "m.dsp"
    codes = [comb(10 + i, 0.5, 3) + "// " + "x" * 20000 + "\n" for i in range(200)]
    live = HotReload(FS, path=path, min_interval_s=0, emit=lambda model: model)
    live.publish(codes[0])
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(path.read_text())

    thread = threading.Thread(target=reader)
    thread.start()
    for code in codes[1:]:
        live.publish(code)
    stop.set()
    thread.join()
    assert seen and all(text in codes for text in seen)


def test_two_publishers_on_one_path(tmp_path):
    path = tmp_path / "m.dsp"
    first = HotReload(FS, path=path, min_interval_s=0, emit=lambda m: m)
    second = HotReload(FS, path=path, min_interval_s=0, emit=lambda m: m)
    import fcntl

    with open(path.with_name("m.dsp.lock"), "a") as held:  # one publisher is mid-write
        fcntl.flock(held, fcntl.LOCK_EX)
        start = time.monotonic()
        assert second.publish(comb(11, 0.5, 3)) is False  # skipped at once, not blocked
        assert time.monotonic() - start < 0.5
    assert first.publish(comb(12, 0.5, 3)) and second.publish(comb(13, 0.5, 3))
    assert path.read_text() == comb(13, 0.5, 3)  # whole files; the last one wins


def test_bad_throttle_settings():
    with pytest.raises(AdacError):
        HotReload(FS, every_n_steps=0)


# --- the reloading host ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_binary():
    return build_host(plugin=False)["cli"]


class Host:
    def __init__(self, binary, path, backend="llvm"):
        self.proc = subprocess.Popen([str(binary), str(path), str(FS), "--backend", backend],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def impulse(self, n: int) -> np.ndarray:
        words = self.ask(f"impulse {n}").split()
        assert words[0] == "ir", words[:5]
        n_in, n_out = int(words[1]), int(words[2])
        return np.array(words[3:], dtype=float).reshape(max(1, n_in), n, n_out).transpose(1, 2, 0)

    def status(self) -> dict:
        words, _, error = self.ask("status").partition("|")
        _, reloads, activations, failures, ms, backend = words.split()
        return {"reloads": int(reloads), "failures": int(failures), "compile_ms": float(ms), "backend": backend,
                "error": error.strip()}

    def close(self):
        self.ask_quit()

    def ask_quit(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=10)


@pytest.fixture
def host(host_binary, tmp_path):
    live = HotReload(FS, path=tmp_path / "live.dsp", min_interval_s=0, emit=lambda code: code)
    live.publish(comb(9, 0.5, 3))
    h = Host(host_binary, tmp_path / "live.dsp")
    assert h.ask("wait 1 10000") == "ok"
    yield h, live
    h.ask_quit()


@pytest.mark.parametrize("backend", ["llvm", "interpreter"])
def test_swap_plays_the_new_model_and_keeps_sliders(host_binary, tmp_path, backend):
    live = HotReload(FS, path=tmp_path / "live.dsp", min_interval_s=0, emit=lambda code: code)
    a, b = comb(9, 0.5, 3), comb(7, -0.25, 5)
    live.publish(a)
    h = Host(host_binary, tmp_path / "live.dsp", backend)
    try:
        assert h.ask("wait 1 10000") == "ok"
        assert h.ask("set /adac/dry_wet 0.25") == "ok"
        before = h.impulse(400)
        want_a = render_impulse_responses(a, FS, 400, params={"/adac/dry_wet": 0.25})
        assert np.abs(before - want_a).max() <= FLOAT32_TOL
        live.publish(b)
        assert h.ask("wait 2 10000") == "ok"
        h.ask("run 4096")  # the crossfade (480 samples) completes; the new DSP has heard only silence
        after = h.impulse(400)
        want_b = render_impulse_responses(b, FS, 400, params={"/adac/dry_wet": 0.25})
        assert np.abs(after - want_b).max() <= FLOAT32_TOL
        assert h.ask("get /adac/dry_wet") == "value 0.25"
        assert h.status()["backend"] == backend
    finally:
        h.ask_quit()


def test_broken_code_keeps_the_old_dsp_and_reports(host):
    h, live = host
    good = h.impulse(200)
    live.publish("process = this is not faust;\n")
    time.sleep(0.5)
    status = h.status()
    assert status["failures"] == 1 and status["reloads"] == 1 and status["error"]
    h.ask("run 4096")
    assert np.array_equal(h.impulse(200), good)


def test_deleted_file_is_survived(host):
    h, live = host
    good = h.impulse(200)
    live.path.unlink()
    time.sleep(0.2)
    h.ask("run 4096")
    assert np.array_equal(h.impulse(200), good)
    live.publish(comb(11, 0.3, 2))
    assert h.ask("wait 2 10000") == "ok"
    h.ask("run 4096")
    assert np.abs(h.impulse(200) - render_impulse_responses(comb(11, 0.3, 2), FS, 200)).max() <= FLOAT32_TOL


def test_a_flood_of_publishes_ends_on_the_newest_without_backlog(host):
    h, live = host
    codes = [comb(13 + i, 0.5, 3) for i in range(50)]
    for code in codes:
        live.publish(code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        h.ask("run 1024")
        if np.abs(h.impulse(400) - render_impulse_responses(codes[-1], FS, 400)).max() <= FLOAT32_TOL:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the host never settled on the newest code")
    assert h.status()["reloads"] < 1 + len(codes)  # intermediate versions were skipped, not queued


def test_a_flamo_model_through_the_publisher(host_binary, tmp_path):
    model = fdn(4, t60=0.05, direct=False)
    live = HotReload(FS, name="live", path=tmp_path / "live.dsp", min_interval_s=0)
    assert live.update(model)
    h = Host(host_binary, tmp_path / "live.dsp")
    try:
        assert h.ask("wait 1 20000") == "ok"
        got = h.impulse(2000)
        want = render_impulse_responses(live.path.read_text(), FS, 2000)
        assert np.abs(got - want).max() <= FLOAT32_TOL * np.abs(want).max()
    finally:
        h.ask_quit()
