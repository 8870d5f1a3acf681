"""Real-time safety, proven: on the audio thread, nothing allocates, frees, locks, waits or makes a system call.

``hosts/rtcheck/librtcheck.so`` is loaded with ``LD_PRELOAD`` into a real host. It counts, on a thread that is
inside ``adac::RtScope`` (``hosts/rtcheck/rtcheck.h``: the hosts put it around every audio-thread call),
malloc/free and their relatives, every ``operator new``/``delete``, mutex/rwlock/spin locks, condition and
semaphore waits, and every system call (futex waits inside glibc and ``open``/``read``/``write`` included,
through Linux's syscall user dispatch). It writes what it counted, with the backtrace of the first violation
of each kind, to ``$ADAC_RTCHECK_REPORT`` at exit.

Hosts and plugins:
  * ``adac-rtcheck-host`` (``hosts/rtcheck``), a JUCE host that loads a VST3: the example plugin (``scons
    plugins/AdacFDN``), the hot-reload plugin, and the negative control ``AdacRtCheck`` (a VST3 that
    allocates, locks or writes on every block when ``ADAC_RTCHECK_VIOLATE`` says so). The host's own
    code (JUCE's VST3 hosting) is reported apart (``ADAC_RTCHECK_EXEMPT_MAIN``), the plugin's is counted.
  * ``adac-hotreload-render``, the command-line host, whose engine is the code checked.

Each scenario must count zero in every category, must have entered the bracket (a host that never does
checks nothing) and must have produced finite, non-silent audio (a host that skipped processing cannot pass).
Reloads are waited for on the hot-reload status (the plugin's ``<path>.status.json``, the command-line
host's ``wait``), never with a fixed sleep.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from adac.backends.juce import build_plugin
from adac.common.resources import data_dir
from adac.hotreload import CommandLineHost, HotReload, build_host

ROOT = Path(__file__).resolve().parent.parent
JUCE_BUILD = ROOT / "build" / "juce-build"
EXAMPLE = ROOT / "build" / "AdacFDN"
FS = 48000
BLOCK = 256
AUDIBLE = 1e-3  # peak of the output: the noise input is +-0.1
VST3_SCENARIOS = ("steady", "automate", "automate-thread", "block-sizes", "rate")
VIOLATIONS = {"allocate": "operator_new", "lock": "pthread_mutex_lock", "syscall": "syscall"}

pytestmark = [pytest.mark.juce, pytest.mark.usefixtures("faust_available")]


# ----------------------------------------------------------------------------------------- builds


@dataclass(frozen=True)
class RtCheck:
    host: Path        # adac-rtcheck-host
    control: Path     # the AdacRtCheck VST3 (negative control)
    interposer: Path  # librtcheck.so


def build_rtcheck() -> RtCheck:
    """The interposer, the JUCE test host and the control plugin, in the shared JUCE build tree."""
    built = build_plugin(data_dir("hosts") / "rtcheck", JUCE_BUILD)
    return RtCheck(host=built["Standalone"], control=built["VST3"], interposer=built["Standalone"].parent / "librtcheck.so")


def example_vst3_and_code(listing: dict) -> tuple[Path, str]:
    """The example plugin's VST3 and its FAUST code, from its bundle listing (conftest.build_example)."""
    return Path(listing["bundles"]["VST3"]["path"]), (EXAMPLE / "AdacFDN.dsp").read_text()


def variants(code: str) -> dict[str, str]:
    """The example's FAUST code changed in its coefficients only (every ``*(c)`` gain times 0.99: the same
    skeleton, the hot-reload fast path) and in its structure (the last delay line one sample longer)."""
    gains = re.findall(r"\*\((0\.\d+)\)", code)
    delays = re.findall(r"@\((\d+)\)", code)
    assert gains and delays, "the example's .dsp has no *(gain) or @(delay) to vary"
    last = delays[-1]
    return {"coefficients": re.sub(r"\*\((0\.\d+)\)", lambda m: f"*({float(m[1]) * 0.99!r})", code),
            "structure": code.replace(f"@({last})", f"@({int(last) + 1})")}


# ------------------------------------------------------------------------------------------ checks


def symbolized(frames: list[str]) -> list[str]:
    """Frames ``/path/module+0xoffset symbol`` as ``module+0xoffset function (file:line)``: addr2line names the
    function where the dynamic symbol table does not; the interposer's own frames are left out."""
    out = []
    for frame in frames:
        match = re.fullmatch(r"(\S+)\+(0x[0-9a-f]+) (\S+)", frame)
        if not match or "librtcheck.so" in match[1]:
            continue
        name = match[3]
        if name == "?" and Path(match[1]).is_file():
            proc = subprocess.run(["addr2line", "-f", "-C", "-e", match[1], match[2]], capture_output=True, text=True)
            function, _, where = proc.stdout.partition("\n")
            name = f"{function} ({where.strip()})"
        out.append(f"{Path(match[1]).name}+{match[2]} {name}")
    return out


def describe(report: dict) -> str:
    """The interposer's report: system calls by name, then every call site with its count and backtrace."""
    text = [f"system calls: {report['syscalls']}"]
    for category, sites in report["sites"].items():
        for site in sites:
            text.append(f"{category} x {site['count']} at:")
            text += ["    " + f for f in symbolized(site["frames"])[:4]]  # the innermost frames name the code
    if report.get("host_counts"):
        text.append(f"(the host's own code, not counted: {report['host_counts']})")
    return "\n".join(text)


def violations(report: dict) -> dict[str, int]:
    return {category: n for category, n in report["counts"].items() if n}


def assert_real_time(report: dict, what: str) -> None:
    assert report["syscall_dispatch"], f"{what}: system calls were not checked: {report['dispatch_error']}"
    assert report["scopes"] > 0, f"{what}: the host never entered adac::RtScope, so nothing was checked"
    assert not violations(report), f"{what}: on the audio thread: {violations(report)}\n{describe(report)}"


def rtcheck_env(rt: RtCheck, report: Path, **extra: str) -> dict:
    preload = " ".join(p for p in (str(rt.interposer), os.environ.get("LD_PRELOAD", "")) if p)
    return {**os.environ, **extra, "LD_PRELOAD": preload, "ADAC_RTCHECK_REPORT": str(report)}


def run_vst3(rt: RtCheck, plugin: Path, scenario: str, tmp: Path, *args: str, **env: str) -> tuple[dict, dict]:
    """One scenario of ``adac-rtcheck-host`` under the interposer: (the host's result, the interposer's report)."""
    report = tmp / f"{scenario}.rtcheck.json"
    report.unlink(missing_ok=True)
    proc = subprocess.run([str(rt.host), str(plugin), scenario, "--rate", str(FS), "--block", str(BLOCK), *args],
                          env=rtcheck_env(rt, report, ADAC_RTCHECK_EXEMPT_MAIN="1", **env), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"{scenario}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert report.is_file(), f"{scenario}: the interposer wrote no report\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), json.loads(report.read_text())


def assert_processed(result: dict, what: str) -> None:
    assert result["finite"], f"{what}: the output holds NaN or infinity"
    assert result["blocks"] > 0 and result["peak_before"] > AUDIBLE and result["peak_after"] > AUDIBLE, \
        f"{what}: silent output (nothing processed?): {result}"


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def rtcheck() -> RtCheck:
    return build_rtcheck()


@pytest.fixture(scope="module")
def example(example_bundles) -> tuple[Path, str]:
    return example_vst3_and_code(example_bundles)


@pytest.fixture(scope="module")
def hotreload_vst3() -> Path:
    return build_host(targets=("plugin",), juce_build=JUCE_BUILD)["vst3"]


@pytest.fixture(scope="module")
def hotreload_cli() -> Path:
    return build_host(targets=("cli",), build_dir=ROOT / "build" / "hotreload")["cli"]


@pytest.fixture
def live(tmp_path, example) -> HotReload:
    """The watched file of a hot-reload host, holding the example's code."""
    publisher = HotReload(FS, path=tmp_path / "live.dsp", min_interval_s=0, emit=lambda code: code)
    publisher.publish(example[1])
    return publisher


# ------------------------------------------------------------------------------- negative control


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
def test_the_interposer_catches_a_plugin_that_violates_on_every_block(rtcheck, tmp_path, violation):
    """The control plugin, clean and then violating: the violation adds at least one count per block."""
    _, clean = run_vst3(rtcheck, rtcheck.control, "steady", tmp_path, ADAC_RTCHECK_VIOLATE="")
    result, dirty = run_vst3(rtcheck, rtcheck.control, "steady", tmp_path, ADAC_RTCHECK_VIOLATE=violation)
    category = VIOLATIONS[violation]
    assert dirty["counts"][category] - clean["counts"][category] >= result["blocks"] > 0, (clean, dirty)
    if violation == "syscall":
        assert dirty["syscalls"].get("write", 0) - clean["syscalls"].get("write", 0) >= result["blocks"]
    assert any("AdacRtCheck.so" in frame for site in dirty["sites"][category] for frame in site["frames"]), \
        dirty["sites"][category]


# ------------------------------------------------------------------------------------- the plugins


@pytest.mark.parametrize("scenario", VST3_SCENARIOS)
def test_the_control_plugin_without_violation(rtcheck, tmp_path, scenario):
    """A JUCE plugin that does nothing but a gain: what JUCE's VST3 wrapper itself does on the audio thread."""
    result, report = run_vst3(rtcheck, rtcheck.control, scenario, tmp_path, ADAC_RTCHECK_VIOLATE="")
    assert_processed(result, scenario)
    assert_real_time(report, f"AdacRtCheck (control), {scenario}")


@pytest.mark.parametrize("scenario", VST3_SCENARIOS)
def test_the_example_plugin(rtcheck, example, tmp_path, scenario):
    result, report = run_vst3(rtcheck, example[0], scenario, tmp_path)
    assert_processed(result, scenario)
    assert_real_time(report, f"AdacFDN VST3, {scenario}")


@pytest.mark.parametrize("scenario", VST3_SCENARIOS)
def test_the_hot_reload_plugin(rtcheck, hotreload_vst3, live, tmp_path, scenario):
    result, report = run_vst3(rtcheck, hotreload_vst3, scenario, tmp_path, ADAC_HOTRELOAD_PATH=str(live.path))
    assert_processed(result, scenario)
    assert_real_time(report, f"AdacHotReload VST3, {scenario}")


@pytest.mark.parametrize("change", ["coefficients", "structure"])
def test_the_hot_reload_plugin_reloading_during_playback(rtcheck, hotreload_vst3, live, example, tmp_path, change):
    """The file changes while the host plays in real time; playback goes on until the plugin's status file
    shows the reload (a constant update, or a compile), then half a second more (the crossfade)."""
    published = tmp_path / "next.dsp"
    published.write_text(variants(example[1])[change])
    expect, least = ("updates", 1) if change == "coefficients" else ("compiles", 2)  # the first load compiled once
    result, report = run_vst3(rtcheck, hotreload_vst3, "reload", tmp_path, "--publish", str(published),
                              "--expect", expect, ADAC_HOTRELOAD_PATH=str(live.path))
    assert result["error"] == "" and result["event_block"] > 0, result
    assert result["status"][expect] >= least and result["status"]["failures"] == 0, result["status"]
    assert_processed(result, change)
    assert_real_time(report, f"AdacHotReload VST3, {change} reloaded during playback")


# --------------------------------------------------------------------------- the command-line host


class CliHost(CommandLineHost):
    """``adac-hotreload-render`` under the interposer, at the test's rate and block."""

    def __init__(self, rt: RtCheck, cli: Path, live: Path, report: Path):
        self.report = report
        super().__init__(live, FS, "--block", BLOCK, binary=cli, env=rtcheck_env(rt, report))

    def wait(self, reloads: int) -> None:
        """Until the engine has applied ``reloads`` publishes (its own ``wait``, 50 ms at a time, so that a
        failed compile ends the wait at once); at most 120 s."""
        deadline = time.monotonic() + 120
        while (status := self.status())["reloads"] < reloads:
            assert status["failures"] == 0, f"the engine failed to load the code: {status}"
            assert time.monotonic() < deadline, f"no reload {reloads} in 120 s: {status}"
            self.ask(f"wait {reloads} 50")

    def peak(self, n: int) -> float:
        """Processes n samples and returns the peak of every output."""
        return float(np.abs(self.record(n)).max())

    def finish(self) -> dict:
        """Quits; the interposer's report."""
        assert self.close() == 0, self.stderr()
        return json.loads(self.report.read_text())


CLI_SCENARIOS = ("steady", "automate", "large-block", "rate", "coefficients", "structure")


@pytest.mark.parametrize("scenario", CLI_SCENARIOS)
def test_the_command_line_host(rtcheck, hotreload_cli, live, example, tmp_path, scenario):
    with CliHost(rtcheck, hotreload_cli, live.path, tmp_path / "cli.rtcheck.json") as host:
        host.wait(1)
        host.ok("input noise 0.1")
        host.ok(f"run {FS // 4}")
        before = host.peak(2048)
        if scenario == "steady":
            host.ok(f"run {FS}")
        elif scenario == "automate":  # every control, every block
            for k in range(200):
                for address, (low, high) in (("/adac/rt60", (0.3, 3.0)), ("/adac/dry_wet", (0.0, 1.0)),
                                             ("/adac/pre_delay", (0.0, 100.0))):
                    host.ok(f"set {address} {low + (high - low) * (k % 10) / 9:.4f}")
                host.ok(f"run {BLOCK}")
        elif scenario == "large-block":  # one call 16 times the announced block
            host.ok(f"run {16 * BLOCK}")
        elif scenario == "rate":
            host.ok(f"rate {2 * FS}")
            host.ok(f"run {FS}")
        else:
            live.publish(variants(example[1])[scenario])
            host.wait(2)
            host.ok(f"run {FS // 2}")  # the update or the crossfade, on the audio thread
            status = host.status()
            counter, least = ("updates", 1) if scenario == "coefficients" else ("compiles", 2)
            assert int(status[counter]) >= least and int(status["failures"]) == 0, status
        after = host.peak(16 * BLOCK if scenario == "large-block" else 2048)
        report = host.finish()
    assert before > AUDIBLE and after > AUDIBLE, (before, after)
    assert_real_time(report, f"adac-hotreload-render, {scenario}")


@pytest.mark.parametrize("change", ["values", "structure"])
def test_the_hot_reload_command_line_host_playing_ir_documents(rtcheck, hotreload_cli, tmp_path, change):
    """What ``adac.HotReload`` publishes (an IR document, played by the runtime): a values update (a snapshot the
    audio thread takes at a block boundary) and a structure change (a new runtime instance, crossfaded), reloaded
    while the host plays and its parameters move: nothing on the audio thread allocates, locks or calls the system."""
    import torch  # noqa: PLC0415 - FLAMO and torch only here
    from flamo_models import FS as MODEL_FS, fdn, set_delays_samples  # noqa: PLC0415

    model = fdn(8, t60=0.3, n_out=1)
    live = HotReload(MODEL_FS, name="live", controls={"dry_wet": True, "rt60": True, "pre_delay": True},
                     path=tmp_path / "live.json", min_interval_s=0)
    live.update(model)
    with CliHost(rtcheck, hotreload_cli, live.path, tmp_path / "cli.rtcheck.json") as host:
        host.wait(1)
        assert host.status()["tier"] == "runtime"
        host.ok("input noise 0.1")
        host.ok(f"run {FS // 4}")
        before = host.peak(2048)
        if change == "values":
            with torch.no_grad():
                for module in model.modules():
                    if hasattr(module, "param") and "Delay" not in type(module).__name__:
                        module.param.mul_(0.98)
        else:  # the longest line beyond its buffer's capacity: a new structure
            lines = next(m for m in model.modules() if type(m).__name__ == "parallelDelay")
            samples = lines.s2sample(lines.map(lines.param.detach())).round()
            samples[int(samples.argmax())] *= 3
            set_delays_samples(lines, samples.tolist())
        assert live.update(model)
        host.wait(2)
        for k in range(40):  # the reload (and crossfade) while parameters move, block after block
            host.ok(f"set /adac/dry_wet {0.5 + 0.01 * (k % 10):.2f}")
            host.ok(f"set /adac/pre_delay {k % 5}")
            host.ok(f"run {BLOCK}")
        status = host.status()
        assert (status["updates"], status["compiles"]) == ((1, 1) if change == "values" else (0, 2)), status
        after = host.peak(2048)
        report = host.finish()
    assert before > AUDIBLE and after > AUDIBLE, (before, after)
    assert_real_time(report, f"adac-hotreload-render, an IR document, {change}")
