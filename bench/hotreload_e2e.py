"""Training step to sound: from ``live.update(model)`` to the first block of the new model's audio in the
running command-line hot-reload host, which plays the published IR document with the runtime (no compiler).

    python3 bench/hotreload_e2e.py [--steps 20] [--lines 16 64] [--attenuations geq] [--changes coefficients
                                   delay structure] [--modes foreground] [--controls dry_wet [rt60]] [--build-dir DIR]

Models: examples/live_training.py's FDN (orthogonal matrix, input/output gains, T60 gains; ``geq`` adds FLAMO's
parallelGEQ per line: 12 sections per line). Three kinds of step:

  coefficients  every trained parameter moves (matrix, gains, equaliser), as an optimiser step does: the document's
                numbers change, its structure (runtime::Plan::signature) does not: the host hands the new Values to
                the playing instance (a values update; its state goes on)
  delay         the shortest delay line's length moves by one sample (the runtime sizes a delay node's buffers for
                its longest line: the capacity stays): a values update too
  structure     the longest delay line alternates between its length and one beyond the buffers' capacity (the
                power of two >= length + 1): a new structure each step, so the host builds a new runtime instance
                and crossfades to it (what a compile was)

Publisher modes: ``foreground`` (update extracts, serialises and writes before it returns) and ``background``
(update snapshots the parameters; a worker thread does the rest). The host plays 256-sample blocks at real-time
pace throughout (a thread keeps asking it for `realtime 50`). Latency = the host's `activation` (the start of the
first block that plays the new model) minus the moment just before ``update`` was called. Both are
CLOCK_MONOTONIC (Python's ``time.monotonic_ns``, the host's ``std::chrono::steady_clock`` in libstdc++ on Linux);
every step also checks ``update start <= activation <= the moment the host reported it``, which an offset between
the clocks would break. Every step checks the path the host took (a values update for coefficient and delay steps,
a new instance for structure steps, never a failure); after the last step of each session the host's impulse
response is compared with the runtime's own render of the last published document (the render driver,
``adac.backends.runtime``; the host's input was silence, so its state is a fresh instance's).

Also measured: the publisher's per-step Python work alone (``live.emit``: the incremental extractor, the runtime
document, the JSON text) and, as the baseline, the full path (``adac.flamo_to_json`` + ``runtime_document`` with
validation + JSON). Writes bench/results/hotreload_e2e.json (``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
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
from adac.backends.faust.render import impulse_responses  # noqa: E402
from adac.backends.runtime import build_runtime, runtime_document  # noqa: E402
from adac.common.machine import machine  # noqa: E402
from adac.hotreload import CommandLineHost, HotReload, build_host  # noqa: E402
from live_training import build  # noqa: E402

FS = 48000
BLOCK = 256
CHECK_SAMPLES = 4096  # of the impulse response compared with the runtime's render after the last step
NFFT = 2 ** 13
CONTROLS = ("dry_wet",)  # the macro-controls (``--controls``; with rt60 every step moves the trained T60)
GOALS_MS = {("coefficients", 16): 20.0, ("coefficients", 64): 150.0, ("structure", 64): 100.0}  # median, with GEQ
PATHS = {"coefficients": "update", "delay": "update", "structure": "new instance"}


# --- the model's steps ---------------------------------------------------------------------------


class Steps:
    """A model and what a step does to it."""

    def __init__(self, lines: int, attenuation: str):
        torch.manual_seed(lines)
        self.model, _ = build(lines, attenuation, FS, NFFT)
        self.trained = [p for p in self.model.parameters() if p.requires_grad]
        self.delays = next(m for m in self.model.modules() if type(m).__name__ == "parallelDelay")
        self.generator = torch.Generator().manual_seed(1)
        lengths = self.lengths()
        self.short, self.long = int(lengths.argmin()), int(lengths.argmax())
        self.shortest, self.longest = float(lengths[self.short]), float(lengths[self.long])
        self.beyond = False

    def lengths(self) -> torch.Tensor:
        return self.delays.s2sample(self.delays.map(self.delays.param.detach())).round()

    def set_line(self, line: int, length: float) -> None:
        samples = self.lengths()
        samples[line] = length
        self.delays.assign_value(self.delays.sample2s(samples))

    def coefficients(self) -> None:
        """Every trained parameter moves a little (like an optimiser step)."""
        with torch.no_grad():
            for p in self.trained:
                p.add_(1e-4 * torch.randn(p.shape, generator=self.generator))

    def delay(self) -> None:
        """The shortest line alternates between its length and one sample more: the buffers' capacity (the runtime
        sizes a delay node's lines for its longest one) does not change."""
        now = float(self.lengths()[self.short])
        self.set_line(self.short, self.shortest + 1 if now == self.shortest else self.shortest)

    def structure(self) -> None:
        """The longest line alternates between its length and one beyond the buffers' capacity (the power of two
        >= length + 1): a new structure each step."""
        self.beyond = not self.beyond
        self.set_line(self.long, self.longest + (2 ** int(np.ceil(np.log2(self.longest + 1))) if self.beyond else 0))


def full_document(model, controls: dict) -> str:
    """The baseline: the whole frontend, validation and the document's JSON, as a first publish does it."""
    return json.dumps(runtime_document(adac.flamo_to_json(model, FS, name="live"), controls),
                      separators=(",", ":"), allow_nan=False)


def emitter_times(lines: int, attenuation: str, steps: int, controls: dict) -> dict:
    """ms per step of the publisher's Python work (coefficient and delay steps), and of the full path."""
    s = Steps(lines, attenuation)
    live = HotReload(FS, name="live", controls=controls)
    start = time.perf_counter()
    live.emit(s.model)
    out = {"first_ms": 1000 * (time.perf_counter() - start)}
    for change in ("coefficients", "delay"):
        times = []
        for _ in range(steps):
            getattr(s, change)()
            start = time.perf_counter()
            text = live.emit(s.model)
            times.append(time.perf_counter() - start)
        out[f"{change}_ms"] = 1000 * statistics.median(times)
    full = []
    for _ in range(3):
        start = time.perf_counter()
        reference = full_document(s.model, controls)
        full.append(time.perf_counter() - start)
    got, want = json.loads(text), json.loads(reference)
    for document in (got, want):  # the rt60 control's T0 is the publisher's last measurement (its trained_every_s)
        document["realisation"]["controls"].pop("rt60", None)
    assert got == want, "the incremental document differs from the full path's"
    out["full_ms"] = 1000 * statistics.median(full)
    out["document_bytes"] = len(text)
    out["extractions"] = live.extractor.extractions
    return out


# --- the running host ----------------------------------------------------------------------------


class Host(CommandLineHost):
    """The command-line host, kept playing at real-time pace by a thread between our own commands."""

    def __init__(self, cli: Path, path: Path):
        super().__init__(path, FS, "--block", BLOCK, binary=cli)
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
        """The status once more than ``after`` instances or values have played their first block."""
        while True:
            status = self.status()
            if int(status["activations"]) > after or int(status["failures"]):
                return status

    def close(self) -> None:
        with self.lock:
            self.closed = True
            super().close()
        self.playing.set()
        self.player.join()


def end_to_end(cli: Path, renderer: Path, lines: int, attenuation: str, mode: str, changes: list[str],
               steps: int, controls: dict) -> tuple[list[dict], float]:
    """The rows of one host session, and max |host - runtime render| / peak of the impulse response after its
    last step."""
    s = Steps(lines, attenuation)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        live = HotReload(FS, name="live", controls=controls, path=Path(tmp) / "live.json", min_interval_s=0,
                         background=mode == "background")
        live.update(s.model, step=0)
        live.flush()
        host = Host(cli, live.path)
        assert host.ask("wait 1 600000") == "ok", host.status()
        host.playing.set()
        step = 0
        for change in changes:
            latencies, blocked, clock_violations = [], [], 0
            for _ in range(steps):
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
                took = (int(status["updates"]) - updates, int(status["compiles"]) - compiles)
                assert took == ((0, 1) if change == "structure" else (1, 0)), (change, status)
                latencies.append((activation - started) / 1000)
            rows.append({"lines": lines, "attenuation": attenuation, "change": change, "mode": mode,
                         "median_ms": statistics.median(latencies), "worst_ms": max(latencies),
                         "update_blocks_ms": statistics.median(blocked), "steps": len(latencies),
                         "clock_violations": clock_violations, "host_ms": float(host.status()["ms"]),
                         "path": PATHS[change]})
        got = host.impulse(CHECK_SAMPLES)
        host.close()
        document = Path(tmp) / "last.json"
        document.write_text(live.path.read_text().partition("\n")[2])
        want = impulse_responses((str(renderer), "--model", str(document)), FS, CHECK_SAMPLES)
    return rows, float(np.abs(got - want).max() / np.abs(want).max())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per row")
    parser.add_argument("--lines", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--attenuations", nargs="+", default=["geq"], choices=["gain", "geq", "sos"])
    parser.add_argument("--changes", nargs="+", default=["coefficients", "delay", "structure"],
                        choices=["coefficients", "delay", "structure"])
    parser.add_argument("--modes", nargs="+", default=["foreground"], choices=["foreground", "background"])
    parser.add_argument("--controls", nargs="+", default=list(CONTROLS), choices=["dry_wet", "rt60", "pre_delay"],
                        help="the model's macro-controls")
    parser.add_argument("--build-dir", type=Path, help="where build_host builds the command-line host")
    parser.add_argument("--emitter-only", action="store_true", help="only the publisher's Python work (no host)")
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
        document = {"machine": about, "fs": FS, "block": BLOCK, "nfft": NFFT, "player": "runtime",
                    "controls": args.controls,
                    "clock": {"python": clock.implementation, "host": "std::chrono::steady_clock (CLOCK_MONOTONIC)"},
                    "emitter": [{"lines": n, "attenuation": a, **e} for (n, a), e in emitter.items()],
                    "end_to_end": rows}
        args.out.write_text(json.dumps(document, indent=1) + "\n")

    print(f"\npublisher's Python work per step (ms; median of {args.steps}: extractor + runtime document + JSON); "
          f"baseline: flamo_to_json + runtime_document (validated) + JSON")
    print(f"{'lines':>5} {'attenuation':11} {'first':>8} {'coef step':>10} {'delay step':>10} {'full':>8} "
          f"{'full/coef':>9} {'bytes':>8}")
    for n in args.lines:
        for attenuation in args.attenuations:
            e = emitter[(n, attenuation)] = emitter_times(n, attenuation, args.steps, controls)
            print(f"{n:5d} {attenuation:11} {e['first_ms']:8.1f} {e['coefficients_ms']:10.1f} {e['delay_ms']:10.1f} "
                  f"{e['full_ms']:8.1f} {e['full_ms'] / e['coefficients_ms']:8.1f}x {e['document_bytes']:8d}", flush=True)
            save()
    if not args.emitter_only:
        cli = build_host(args.build_dir, targets=("cli",))["cli"]
        renderer = build_runtime(("adac-runtime-render",)) / "adac-runtime-render"
        print(f"\nend to end: live.update(model) -> first block of the new model in adac-hotreload-render (runtime), "
              f"controls {' '.join(args.controls)} (ms; {args.steps} steps per row)")
        print(f"{'lines':>5} {'attenuation':11} {'change':12} {'mode':10} {'path':12} {'median':>8} {'worst':>8} "
              f"{'update()':>9} {'host':>6} {'goal':>10}")
        for n in args.lines:
            for attenuation in args.attenuations:
                for mode in args.modes:
                    session, deviation = end_to_end(cli, renderer, n, attenuation, mode, args.changes, args.steps,
                                                    controls)
                    if deviation > 1e-5:
                        raise RuntimeError(f"the host does not play the last published model: {deviation:.2e}")
                    for row in session:
                        row["deviation_after_last_step"] = deviation
                        goal = GOALS_MS.get((row["change"], n)) if attenuation == "geq" else None
                        row["goal_ms"] = goal
                        verdict = "" if goal is None else (f"<= {goal:.0f} ok" if row["median_ms"] <= goal else
                                                           f"{row['median_ms'] / goal:.1f}x over")
                        rows.append(row)
                        save()
                        print(f"{n:5d} {attenuation:11} {row['change']:12} {mode:10} {row['path']:12} "
                              f"{row['median_ms']:8.1f} {row['worst_ms']:8.1f} {row['update_blocks_ms']:9.1f} "
                              f"{row['host_ms']:6.1f} {verdict:>10}"
                              + (f"  CLOCK CHECK FAILED x{row['clock_violations']}" if row["clock_violations"] else ""),
                              flush=True)
                    print(f"{'':5} after the last step the host plays the runtime's render of the last document to "
                          f"{deviation:.1e} of the peak", flush=True)
    about["load_average_at_end"] = os.getloadavg()
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in about['load_average_at_end'])}")
    save()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
