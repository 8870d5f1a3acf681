"""Train a small FDN with FLAMO and publish every step to the hot-reload host.

    python3 examples/live_training.py [--steps 50] [--out build/live/live.dsp] [--background] [--host]

Run the host (built by `python3 -c "import adac.hotreload as h; print(h.build_host())"`, then
`build/hotreload/AdacHotReload_artefacts/Release/Standalone/AdacHotReload` with
ADAC_HOTRELOAD_PATH=build/live/live.dsp, or the VST3 in a DAW) and listen while it trains:
each optimiser step re-emits the model; only changed code is published. Training changes the
matrix and the gains, not the delay lengths, so after the first compile the host takes every
step without compiling (constant updates). `--host` starts the headless command-line host on
the same file and prints what it did; `--background` emits on a worker thread (the optimiser
never waits for adac.flamo_to_faust).
"""
import argparse
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import torch
from flamo.optimize.loss import mse_loss
from flamo.processor import dsp, system

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import adac  # noqa: E402


def build(fs: int, nfft: int) -> tuple[system.Shell, system.Shell]:
    """The FDN to play, and a training view of it (FFT in, magnitude out) sharing its modules."""
    common = {"nfft": nfft, "alias_decay_db": 30.0, "device": "cpu"}
    delays = dsp.parallelDelay(size=(6,), max_len=2000, isint=True, fs=fs, **common)
    delays.assign_value(delays.sample2s(torch.tensor([593.0, 743.0, 877.0, 1013.0, 1153.0, 1319.0])))
    matrix = dsp.Matrix(size=(6, 6), matrix_type="orthogonal", requires_grad=True, **common)
    attenuation = dsp.parallelGain(size=(6,), **common)
    attenuation.assign_value(10 ** (-3 * torch.tensor([593.0, 743.0, 877.0, 1013.0, 1153.0, 1319.0]) / (fs * 1.2)))
    core = system.Series(OrderedDict(
        input_gain=dsp.Gain(size=(6, 1), requires_grad=True, **common),
        feedback_loop=system.Recursion(delays, system.Series(OrderedDict(mixing_matrix=matrix, attenuation=attenuation))),
        output_gain=dsp.Gain(size=(1, 6), requires_grad=True, **common),
    ))
    play = system.Shell(core)
    train = system.Shell(core, input_layer=dsp.FFT(nfft), output_layer=dsp.Transform(lambda x: torch.abs(x)))
    return play, train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--fs", type=int, default=48000)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "live" / "live.dsp")
    parser.add_argument("--background", action="store_true", help="emit and publish on a worker thread")
    parser.add_argument("--host", action="store_true", help="run the headless host on --out and report its reloads")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    nfft = 2 ** 13
    play, train = build(args.fs, nfft)
    live = adac.HotReload(args.fs, name="live", controls={"dry_wet": True}, path=args.out, min_interval_s=0.05,
                          background=args.background)
    host = None
    if args.host:
        from adac.hotreload import build_host

        cli = build_host(targets=("cli",))["cli"]
        host = subprocess.Popen([str(cli), str(args.out), str(args.fs)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
    optimiser = torch.optim.Adam(train.parameters(), lr=1e-2)
    impulse = torch.zeros(1, nfft // 2 + 1, 1)
    impulse[:, 0, :] = 1
    target = torch.ones(1, nfft // 2 + 1)
    criterion = mse_loss()
    for step in range(args.steps):
        optimiser.zero_grad()
        loss = criterion(train(impulse), target)  # a colorless (flat magnitude) objective
        loss.backward()
        optimiser.step()
        start = time.perf_counter()
        published = live.update(play)
        cost = (time.perf_counter() - start) * 1000
        print(f"step {step:3d}  loss {loss.item():.4f}  update {cost:6.1f} ms  {'published' if published else ''}",
              flush=True)
    live.update(play, force=True)
    if args.background:
        live.flush()
    print(f"{live.published} versions published to {live.path}")
    if live.errors:
        print("emitter errors:", *live.errors, sep="\n  ")
    if host is not None:
        host.stdin.write("wait 1 60000\n")
        host.stdin.flush()
        host.stdout.readline()
        time.sleep(0.5)  # let the last publish land
        host.stdin.write("run 4800\nstatus\nquit\n")
        host.stdin.flush()
        lines = host.communicate(timeout=60)[0].splitlines()
        print("host:", lines[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
