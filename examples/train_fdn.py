"""Train the AdacFDN example with FLAMO's colorless-FDN objective and write its checkpoint.

    python3 examples/train_fdn.py [--epochs 6] [--out plugins/AdacFDN/checkpoint.pt]

The feedback matrix and the input/output gains are optimised so the lossless
loop has a flat magnitude response (MSE to 1) with a dense matrix (FLAMO's
sparsity loss), as in Dal Santo et al., "Optimizing tiny colorless feedback delay
networks". Training runs on a lossless view of the network that shares those
modules with the plugin model; the checkpoint is the plugin model's state_dict
(loadable with torch.load(..., weights_only=True)). Seeded and single-batch-order
(shuffle off): a re-run on the same machine writes the same bytes, so `scons` then finds
nothing to do; train with another --seed or --epochs and `scons` rebuilds IR -> .dsp ->
certificate -> plugin. (Bit-identical results across CPUs/torch builds are not promised.)
"""
import argparse
import importlib.util
import io
import sys
from collections import OrderedDict
from pathlib import Path

import torch
from flamo.optimize.dataset import DatasetColorless, get_dataloader
from flamo.optimize.loss import mse_loss, sparsity_loss
from flamo.optimize.trainer import Trainer
from flamo.processor import dsp, system

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from adac.common.fileio import write_bytes_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def load_factory():
    spec = importlib.util.spec_from_file_location("adacfdn_model", ROOT / "plugins" / "AdacFDN" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--fs", type=int, default=48000)
    parser.add_argument("--nfft", type=int, default=2 ** 13)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=ROOT / "plugins" / "AdacFDN" / "checkpoint.pt")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    factory = load_factory()
    plugin = factory.build_model(args.fs, nfft=args.nfft, alias_decay_db=30.0)
    reverb = plugin.get_core().branchA
    loop = reverb.feedback_loop
    # lossless view for the colorless objective: same delay, matrix and gain modules, no attenuation
    lossless = system.Shell(
        system.Series(OrderedDict(
            input_gain=reverb.input_gain,
            feedback_loop=system.Recursion(loop.feedforward, system.Series(OrderedDict(mixing_matrix=loop.feedback.mixing_matrix))),
            output_gain=reverb.output_gain,
        )),
        input_layer=dsp.FFT(args.nfft),
        output_layer=dsp.Transform(lambda x: torch.abs(x)),
    )
    bins = args.nfft // 2 + 1
    dataset = DatasetColorless(input_shape=(1, bins, 2), target_shape=(1, bins, 1), expand=64, device="cpu")
    train = get_dataloader(dataset, batch_size=8, shuffle=False)
    valid = get_dataloader(DatasetColorless(input_shape=(1, bins, 2), target_shape=(1, bins, 1), expand=8, device="cpu"),
                           batch_size=8, shuffle=False)
    trainer = Trainer(lossless, max_epochs=args.epochs, lr=1e-2, patience=5, patience_delta=1e-4, log=False, device="cpu")
    trainer.register_criterion(mse_loss(nfft=args.nfft, device="cpu"), 1)
    trainer.register_criterion(sparsity_loss(), 0.2, requires_model=True)
    trainer.train(train, valid)

    # the plugin model runs with FLAMO's defaults: store its state as built by the factory
    state = {key: value.detach().clone() for key, value in plugin.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(args.out, buffer.getvalue())  # a reader (scons) never sees half a checkpoint
    print(f"wrote {args.out} (train loss {trainer.train_loss[-1]:.4f}, valid loss {trainer.valid_loss[-1]:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
