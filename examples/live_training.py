"""Train a small FDN with FLAMO and publish every step to the hot-reload host.

    python3 examples/live_training.py [--steps 50] [--out build/live/live.dsp]

Run the host (built by `python3 -c "import adac.hotreload as h; print(h.build_host())"`, then
`build/hotreload/AdacHotReload_artefacts/Release/Standalone/AdacHotReload` with
ADAC_HOTRELOAD_PATH=build/live/live.dsp, or the VST3 in a DAW) and listen while it trains:
each optimiser step re-emits the model; only changed code is published.
"""
import argparse
import sys
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
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    nfft = 2 ** 13
    play, train = build(args.fs, nfft)
    live = adac.HotReload(args.fs, name="live", controls={"dry_wet": True}, path=args.out, min_interval_s=0.05)
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
        published = live.update(play)
        print(f"step {step:3d}  loss {loss.item():.4f}  {'published' if published else ''}", flush=True)
    live.update(play, force=True)
    print(f"{live.published} versions published to {live.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
