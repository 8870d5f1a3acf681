"""Training step to sound: from ``live.update(model)`` to the first block of the new model's audio in the
running command-line hot-reload host, for FDNs of 4, 16 and 64 lines.

    python3 bench/hotreload_e2e.py [--steps 20] [--lines 4 16 64] [--attenuations gain geq]
                                   [--changes coefficients delay] [--modes foreground background]
                                   [--controls dry_wet [rt60]] [--backend tiered] [--build-dir DIR]

Models: examples/live_training.py's FDN (orthogonal matrix, input/output gains, T60 gains; ``geq``
adds FLAMO's parallelGEQ per line: 12 sections per line). Two kinds of step:

  coefficients  every trained parameter moves (matrix, gains, equaliser), as an optimiser step does:
                the code changes only in its float constants (the host's constant-update fast path)
  delay         the first delay line gets one sample longer: new integers in the code, `@(n)` in the loop
                and at the line's output. The host compiled each line with room for a power of two >= twice
                its length, so this is a constant update too (a length beyond that compiles: the cost of
                a compile is the first step's, `host compile` in the JSON)

Both publisher modes: ``foreground`` (update emits and writes before it returns) and ``background``
(update snapshots the parameters; a worker thread emits and writes). The host plays 256-sample blocks
at real-time pace throughout (a thread keeps asking it for `realtime 50`). Latency = the host's
`activation` (the start of the first block that plays the new model) minus the moment just before
``update`` was called. Both are CLOCK_MONOTONIC: Python's ``time.monotonic_ns`` is
``clock_gettime(CLOCK_MONOTONIC)`` (printed from ``time.get_clock_info``) and the host's
``std::chrono::steady_clock`` is CLOCK_MONOTONIC in libstdc++ on Linux; every step also checks
``update start <= activation <= the moment the host reported it``, which an offset between the clocks
would break. Every step checks that the published code's delay lengths changed (delay steps) or not
(coefficient steps), and after the last step the host's impulse response is compared with FAUST's own
render of the last published code (``adac.backends.faust.render``; the host's input was silence, so its
state is a fresh DSP's): the sound is the new model's.

Also measured, in the same run: the emitter alone per step (the publisher's incremental emitter) and,
as the baseline, ``adac.flamo_to_faust`` of the same model (the full frontend + backend), and their
ratio. Writes bench/results/hotreload_e2e.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import adac  # noqa: E402
from adac.backends.faust.render import render_impulse_responses  # noqa: E402
from adac.common.machine import machine  # noqa: E402
from adac.hotreload import CommandLineHost, HotReload, build_host  # noqa: E402
from live_training import build  # noqa: E402

FS = 48000
BLOCK = 256
CHECK_SAMPLES = 4096  # of the impulse response compared with FAUST's render after the last step
NFFT = 2 ** 13
CONTROLS = ("dry_wet",)  # the macro-controls of the code (``--controls``; with rt60 every step moves the trained T60)
GOALS_MS = {16: 50.0, 64: 150.0}  # median, coefficient steps with GEQ
STRUCTURAL_GOAL_MS = 100.0  # 16 lines, a delay-length change


# --- the model's steps ---------------------------------------------------------------------------


class Steps:
    """A model and what a step does to it."""

    def __init__(self, lines: int, attenuation: str):
        torch.manual_seed(lines)
        self.model, _ = build(lines, attenuation, FS, NFFT)
        self.trained = [p for p in self.model.parameters() if p.requires_grad]
        self.delays = next(m for m in self.model.modules() if type(m).__name__ == "parallelDelay")
        self.generator = torch.Generator().manual_seed(1)

    def coefficients(self) -> None:
        """Every trained parameter moves a little (like an optimiser step)."""
        with torch.no_grad():
            for p in self.trained:
                p.add_(1e-4 * torch.randn(p.shape, generator=self.generator))

    def delay(self) -> None:
        """The first line one sample longer."""
        samples = self.delays.s2sample(self.delays.map(self.delays.param.detach())).round()
        samples[0] += 1
        self.delays.assign_value(self.delays.sample2s(samples))


def emitter_times(lines: int, attenuation: str, steps: int, controls: dict) -> dict:
    """ms per step of the incremental emitter (coefficient and delay steps), and of adac.flamo_to_faust."""
    s = Steps(lines, attenuation)
    live = HotReload(FS, name="live", controls=controls)
    start = time.perf_counter()
    live.emit(s.model)
    first = time.perf_counter() - start
    out = {"first_ms": 1000 * first}
    for change in ("coefficients", "delay"):
        times = []
        for _ in range(steps):
            getattr(s, change)()
            start = time.perf_counter()
            code = live.emit(s.model)
            times.append(time.perf_counter() - start)
        out[f"{change}_ms"] = 1000 * statistics.median(times)
    full = []
    for _ in range(3):
        start = time.perf_counter()
        reference = adac.flamo_to_faust(s.model, FS, name="live", controls=controls)
        full.append(time.perf_counter() - start)
    assert reference == code, "the incremental emitter's code differs from adac.flamo_to_faust"
    out["full_ms"] = 1000 * statistics.median(full)
    out["extractions"] = live.extractor.extractions
    return out


# --- the running host ----------------------------------------------------------------------------


class Host(CommandLineHost):
    """The command-line host, kept playing at real-time pace by a thread between our own commands."""

    def __init__(self, cli: Path, path: Path, backend: str):
        self.tiered = backend == "tiered"
        promote = ["--promote", "manual"] if self.tiered else []  # each tier's first block measured on its own
        super().__init__(path, FS, "--block", BLOCK, "--backend", backend, *promote, binary=cli)
        self.lock = threading.Lock()
        self.closed = False
        self.playing = threading.Event()
        self.player = threading.Thread(target=self._play, daemon=True)
        self.player.start()

    def ask(self, line: str) -> str:
        with self.lock:
            return "closed" if self.closed else super().ask(line)

    def _play(self) -> None:
        while not self.closed:
            self.playing.wait()
            self.ask("realtime 50")

    def activated(self, after: int) -> dict:
        """The status once more than ``after`` DSPs have played their first block (the host keeps playing)."""
        while True:
            status = self.status()
            if int(status["activations"]) > after:
                return status

    def promote(self) -> int | None:
        """A tiered host playing an interpreter build: let it swap to the LLVM build; the LLVM build's activation."""
        status = self.status()
        if not self.tiered or status["tier"] != "interpreter":
            return None
        assert self.ask("promote 600000") == "ok", self.status()
        self.activated(int(status["activations"]))
        return int(self.ask("activation").split()[1])

    def close(self) -> None:
        with self.lock:
            self.closed = True
            super().close()
        self.playing.set()
        self.player.join()


def delay_lengths(path: Path) -> list[str]:
    """The integer delay lengths `@(n)` of a published file, in order."""
    return re.findall(r"@\((\d+)\)", path.read_text())


def end_to_end(cli: Path, lines: int, attenuation: str, mode: str, changes: list[str], steps: dict[str, int],
               backend: str, controls: dict) -> tuple[list[dict], float]:
    """The rows of one host session, and max |host - FAUST render| / peak of the impulse response after its
    last step."""
    s = Steps(lines, attenuation)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        live = HotReload(FS, name="live", controls=controls, path=Path(tmp) / "live.dsp", min_interval_s=0,
                         background=mode == "background")
        # step 0 after one step: initial values that are exact (a 0 dB band's gain is 1.0) are simplified by the
        # emitter (a gain of 1 is a wire), so the first step off them changes the code's form (one compile)
        s.coefficients()
        live.update(s.model, step=0)
        live.flush()
        host = Host(cli, live.path, backend)
        assert host.ask("wait 1 600000") == "ok", host.status()
        host.playing.set()
        host.promote()
        step = 0
        lengths = delay_lengths(live.path)
        for change in changes:
            latencies, to_llvm, blocked, clock_violations = [], [], [], 0
            for _ in range(steps[change]):
                step += 1
                getattr(s, change)()
                status = host.status()
                before, updates, compiles = int(status["activations"]), int(status["updates"]), int(status["compiles"])
                started = time.monotonic_ns() // 1000
                live.update(s.model, step=step)
                blocked.append((time.monotonic_ns() // 1000 - started) / 1000)
                status = host.activated(before)
                if live.errors or int(status["failures"]):
                    raise RuntimeError(f"{live.errors} {status}")
                activation = int(host.ask("activation").split()[1])
                reported = time.monotonic_ns() // 1000
                clock_violations += not started <= activation <= reported
                # a delay step changed the code's delay lengths, a coefficient step did not; both are constant
                # updates, unless the host did not lift the program (more constants than --max-lifted): compiles
                assert (delay_lengths(live.path) != lengths) == (change == "delay"), (change, lengths)
                lengths = delay_lengths(live.path)
                took = (int(status["updates"]) - updates, int(status["compiles"]) > compiles)
                lifted = bool(int(status["lifted"]))
                assert took == ((1, False) if lifted else (0, True)), (change, status)
                latencies.append((activation - started) / 1000)
                llvm = host.promote()
                if llvm is not None:
                    to_llvm.append((llvm - started) / 1000)
            rows.append({"lines": lines, "attenuation": attenuation, "change": change, "mode": mode,
                         "median_ms": statistics.median(latencies), "worst_ms": max(latencies),
                         "llvm_median_ms": statistics.median(to_llvm) if to_llvm else None,
                         "update_blocks_ms": statistics.median(blocked), "steps": len(latencies),
                         "clock_violations": clock_violations, "host_compile_ms": float(host.status()["ms"]),
                         "path": "update" if lifted else "compile"})
        got = host.impulse(CHECK_SAMPLES)
        host.close()
        want = render_impulse_responses(live.path.read_text().partition("\n")[2], FS, CHECK_SAMPLES)
    return rows, float(np.abs(got - want).max() / np.abs(want).max())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per row")
    parser.add_argument("--delay-steps", type=int, help="steps per delay-change row (default --steps)")
    parser.add_argument("--lines", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--attenuations", nargs="+", default=["gain", "geq"], choices=["gain", "geq", "sos"])
    parser.add_argument("--changes", nargs="+", default=["coefficients", "delay"], choices=["coefficients", "delay"])
    parser.add_argument("--modes", nargs="+", default=["foreground", "background"], choices=["foreground", "background"])
    parser.add_argument("--controls", nargs="+", default=list(CONTROLS), choices=["dry_wet", "rt60", "pre_delay"],
                        help="the code's macro-controls")
    parser.add_argument("--backend", default="tiered", help="the host's --backend (llvm, interpreter, tiered)")
    parser.add_argument("--build-dir", type=Path, help="where build_host builds the command-line host")
    parser.add_argument("--emitter-only", action="store_true", help="only the emitter (no host)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hotreload_e2e.json")
    args = parser.parse_args(argv)
    controls = {name: True for name in args.controls}
    torch.set_num_threads(1)  # the training process's setting here; see the README text
    about = machine()
    clock = time.get_clock_info("monotonic")
    print(f"machine: {about['cpu']}, {about['cores']} cores, {about['os']}, Python {about['python']}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} thread)")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in about['load_average'])}")
    print(f"clock: Python time.monotonic_ns = {clock.implementation}; host std::chrono::steady_clock = CLOCK_MONOTONIC")
    emitter, rows = {}, []

    def save() -> None:  # after every row: an interrupted run keeps what it measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        document = {"machine": about, "fs": FS, "block": BLOCK, "nfft": NFFT, "backend": args.backend,
                    "controls": args.controls,
                    "clock": {"python": clock.implementation, "host": "std::chrono::steady_clock (CLOCK_MONOTONIC)"},
                    "emitter": [{"lines": n, "attenuation": a, **e} for (n, a), e in emitter.items()],
                    "end_to_end": rows}
        args.out.write_text(json.dumps(document, indent=1) + "\n")

    print(f"\nemitter per step (ms; median of {args.steps}); baseline adac.flamo_to_faust of the same model")
    print(f"{'lines':>5} {'attenuation':11} {'first':>8} {'coef step':>10} {'delay step':>10} {'full':>8} {'full/coef':>9}")
    for n in args.lines:
        for attenuation in args.attenuations:
            e = emitter[(n, attenuation)] = emitter_times(n, attenuation, args.steps, controls)
            print(f"{n:5d} {attenuation:11} {e['first_ms']:8.1f} {e['coefficients_ms']:10.1f} {e['delay_ms']:10.1f} "
                  f"{e['full_ms']:8.1f} {e['full_ms'] / e['coefficients_ms']:8.1f}x", flush=True)
            save()
    if not args.emitter_only:
        cli = build_host(args.build_dir, targets=("cli",))["cli"]
        print(f"\nend to end: live.update(model) -> first block of the new model in adac-hotreload-render "
              f"--backend {args.backend}, controls {' '.join(args.controls)} (ms; {args.steps} steps per row"
              f"{'' if not args.delay_steps else f', {args.delay_steps} per delay row'})")
        print(f"{'lines':>5} {'attenuation':11} {'change':12} {'mode':10} {'median':>8} {'worst':>8} {'update()':>9} "
              f"{'to LLVM':>8} {'goal':>9}")
        for n in args.lines:
            for attenuation in args.attenuations:
                for mode in args.modes:
                    steps = {"coefficients": args.steps, "delay": args.delay_steps or args.steps}
                    session, deviation = end_to_end(cli, n, attenuation, mode, args.changes, steps, args.backend, controls)
                    if deviation > 1e-5:
                        raise RuntimeError(f"the host does not play the last published model: {deviation:.2e}")
                    for row in session:
                        row["deviation_after_last_step"] = deviation
                        goal = (GOALS_MS.get(n) if row["change"] == "coefficients" and attenuation == "geq" else
                                STRUCTURAL_GOAL_MS if row["change"] == "delay" and n == 16 else None)
                        row["goal_ms"] = goal
                        verdict = "" if goal is None else (f"<= {goal:.0f} ok" if row["median_ms"] <= goal else
                                                           f"{row['median_ms'] / goal:.1f}x over")
                        rows.append(row)
                        save()
                        print(f"{n:5d} {attenuation:11} {row['change']:12} {mode:10} {row['median_ms']:8.1f} "
                              f"{row['worst_ms']:8.1f} {row['update_blocks_ms']:9.1f} "
                              f"{row['llvm_median_ms'] or float('nan'):8.1f} "
                              f"{verdict:>9}" + ("" if row["path"] == "update" else
                                                 "  (every step compiled: the program was not lifted, --max-lifted)")
                              + (f"  CLOCK CHECK FAILED x{row['clock_violations']}" if row["clock_violations"] else ""),
                              flush=True)
                    print(f"{'':5} after the last step the host plays FAUST's render of the last code to "
                          f"{deviation:.1e} of the peak", flush=True)
    about["load_average_at_end"] = os.getloadavg()
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in about['load_average_at_end'])}")
    save()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
