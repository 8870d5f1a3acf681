"""Train an FDN with FLAMO and hear every optimiser step in the hot-reload host; A/B between steps.

    python3 examples/live_training.py [--lines 6] [--attenuation geq|sos|gain] [--steps 50]
                                      [--out build/live/live.json] [--background] [--rt60] [--host]

Each step publishes the model with its step number and loss:

    live = adac.HotReload(fs, name="live", controls={"dry_wet": True}, path="build/live/live.json")
    for step in range(steps):
        ...optimiser step...
        live.update(play, step=step, loss=loss.item())

The first update extracts the model's structure; every later step re-reads only its parameter values
(the trained matrix, input/output gains and the per-line attenuation: an octave-band graphic
equaliser, FLAMO's parallelGEQ, or a second-order section, parallelSOSFilter) and publishes the model as data
(the IR document the C++ runtime reads): a step that changed only numbers is a values update in the host (no
compiler anywhere; the reverb's tail goes on), a change of structure a new instance crossfaded in.
The published file starts with `// adac-publish step=<i> loss=<l>`; the host keeps the last 32
publishes as its history.

Listening: the `AdacHotReload` plugin (VST3 or Standalone, built by
`python3 -c "import adac.hotreload as h; print(h.build_host())"`) with ADAC_HOTRELOAD_PATH=build/live/live.json.
Its host parameters choose what plays, crossfaded: "audition" = live (the newest step), pinned (the
newest publish whose step is at most "pinned step") or bypass (the dry input). The headless
command-line host (`--host` starts it on the same file) has the same choices as commands:

    history              the publishes it keeps: "history <count> <id>:<step>:<loss>:<compile|update> ..."
    audition live        play the newest model
    audition pin K       play history entry K (a fresh instance of that step's model)
    audition bypass      play the dry input

`--host` prints the host's history after training, then pins the step with the lowest loss, and
goes back to live. `--background` emits on a worker thread (the optimiser never waits for adac).
`--rt60` adds the rt60 control: each step moves the trained T60 (the slider's default and range), which
the host still takes as a values update; the slider, never set, follows the newest default.
"""
from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path

import scipy.signal
import torch
from flamo.optimize.loss import mse_loss
from flamo.processor import dsp, system

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import adac  # noqa: E402
from adac.hotreload import CommandLineHost  # noqa: E402

ATTENUATIONS = ("geq", "sos", "gain")


def delay_lengths(n_lines: int, lo: int = 401, hi: int = 1999) -> list[int]:
    """n distinct primes spread between lo and hi samples."""
    primes = [p for p in range(lo, hi) if all(p % q for q in range(2, int(p ** 0.5) + 1))]
    return [primes[round(i * (len(primes) - 1) / max(n_lines - 1, 1))] for i in range(n_lines)]


def build(n_lines: int = 6, attenuation: str = "geq", fs: int = 48000, nfft: int = 2 ** 13,
          t60: float = 1.2) -> tuple[system.Shell, system.Shell]:
    """The FDN to play and a training view of it (FFT in, magnitude out) sharing its modules.

    Trained: the orthogonal mixing matrix (n x n), the input (n x 1) and output (1 x n) gains, and the
    per-line attenuation after the T60 gains: ``geq`` a parallelGEQ (FLAMO's octave bands: 9 peak filters,
    2 shelves and a broadband gain, 12 sections per line), ``sos`` a parallelSOSFilter (one section per line, a gentle
    lowpass to start from), ``gain`` none (the T60 gains only, fixed).
    """
    if attenuation not in ATTENUATIONS:
        raise ValueError(f"attenuation must be one of {ATTENUATIONS}, got {attenuation!r}")
    common = {"nfft": nfft, "alias_decay_db": 30.0, "device": "cpu"}
    samples = torch.tensor(delay_lengths(n_lines), dtype=torch.float32)
    delays = dsp.parallelDelay(size=(n_lines,), max_len=int(samples.max()) + 1, isint=True, fs=fs, **common)
    delays.assign_value(delays.sample2s(samples))
    decay = dsp.parallelGain(size=(n_lines,), **common)
    decay.assign_value(10 ** (-3 * samples / (fs * t60)))
    feedback = OrderedDict(mixing_matrix=dsp.Matrix(size=(n_lines, n_lines), matrix_type="orthogonal",
                                                    requires_grad=True, **common),
                           decay=decay)
    if attenuation == "geq":
        geq = dsp.parallelGEQ(size=(n_lines,), octave_interval=1, fs=fs, requires_grad=True, **common)
        gains_db = torch.linspace(0.0, -3.0, geq.param.shape[0]).unsqueeze(1).expand(-1, n_lines)  # duller highs
        geq.assign_value(10 ** (gains_db / 20))
        feedback["attenuation"] = geq
    elif attenuation == "sos":
        # normalize_a0=False: FLAMO 0.2.20's a0-normalising map writes in place into a tensor its own backward
        # needs (autograd refuses the second step); the sections start with a0 = 1 and adac normalises anyway
        sos = dsp.parallelSOSFilter(size=(n_lines,), n_sections=1, fs=fs, normalize_a0=False, **common)
        lowpass = torch.tensor(scipy.signal.butter(2, 0.6, output="sos")[0], dtype=torch.float32)  # (6,)
        sos.assign_value(lowpass.view(1, 6, 1).expand(sos.param.shape).clone())
        sos.param.requires_grad_(True)  # FLAMO's SOS filters take no requires_grad argument
        feedback["attenuation"] = sos
    core = system.Series(OrderedDict(
        input_gain=dsp.Gain(size=(n_lines, 1), requires_grad=True, **common),
        feedback_loop=system.Recursion(delays, system.Series(feedback)),
        output_gain=dsp.Gain(size=(1, n_lines), requires_grad=True, **common),
    ))
    play = system.Shell(core)
    train = system.Shell(core, input_layer=dsp.FFT(nfft), output_layer=dsp.Transform(lambda x: torch.abs(x)))
    return play, train


def training_steps(train: system.Shell, steps: int, lr: float = 1e-3):
    """Adam on a colourless objective (a flat magnitude response); yields ``(step, loss)`` after each step."""
    nfft = train.get_inputLayer().nfft
    optimiser = torch.optim.Adam([p for p in train.parameters() if p.requires_grad], lr=lr)
    impulse = torch.zeros(1, nfft, 1)
    impulse[:, 0, :] = 1
    target = torch.ones(1, nfft // 2 + 1, 1)
    criterion = mse_loss()
    for step in range(steps):
        optimiser.zero_grad()
        loss = criterion(train(impulse), target)
        loss.backward()
        optimiser.step()
        yield step, loss.item()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=6)
    parser.add_argument("--attenuation", choices=ATTENUATIONS, default="geq")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--fs", type=int, default=48000)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "live" / "live.json")
    parser.add_argument("--background", action="store_true", help="emit and publish on a worker thread")
    parser.add_argument("--rt60", action="store_true", help="the rt60 control too (besides dry_wet)")
    parser.add_argument("--host", action="store_true", help="run the headless host on --out; show its history and A/B")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    play, train = build(args.lines, args.attenuation, args.fs)
    controls = {"dry_wet": True, **({"rt60": True} if args.rt60 else {})}
    live = adac.HotReload(args.fs, name="live", controls=controls, path=args.out, min_interval_s=0,
                          background=args.background)
    host = CommandLineHost(args.out, args.fs) if args.host else None
    losses = {}
    for step, loss in training_steps(train, args.steps):
        published = live.update(play, step=step, loss=loss)
        losses[step] = loss
        print(f"step {step:3d}  loss {loss:.5f}  {'published' if published else ''}", flush=True)
    if args.background and not live.flush(timeout=60):
        print("the publisher's worker did not finish within 60 s")
    print(f"{live.published} versions published to {live.path} ({live.extractor.extractions} structure extraction)")
    if live.errors:
        print("emitter errors:", *live.errors, sep="\n  ")
    if host is not None:
        entries = []
        for _ in range(400):  # the host processes audio only when asked: play until the last step is in its history
            entries = host.history()
            if entries and entries[-1][1] == str(args.steps - 1):
                break
            host.ask("realtime 50")
        print("host:", host.ask("status"))
        print("host history (id:step:loss:how):", " ".join(":".join(e) for e in entries))
        tagged = [e for e in entries if e[2] != "-"]
        if tagged:
            best = min(tagged, key=lambda e: float(e[2]))
            print(f"audition pin {best[0]} (step {best[1]}, lowest loss {best[2]}):", host.ask(f"audition pin {best[0]}"))
            host.ask("realtime 200")
            print("audition bypass:", host.ask("audition bypass"))
            print("audition live:", host.ask("audition live"))
            print("host:", host.ask("status"))
        host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
