"""FLAMO's own responses of a model (or of an IR, rebuilt in FLAMO): the reference adac's renders are
compared with. Float64, no anti-aliasing envelope, an nfft of the caller's choice."""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from flamo.processor import system

from ...common.errors import AdacError
from .modules import analysis_view
from .rebuild import json_to_flamo


@contextlib.contextmanager
def _float64_shell(model_or_ir, nfft: int):
    """A Shell around the model (or the IR rebuilt) in float64 at ``nfft`` with no alias envelope."""
    if isinstance(model_or_ir, dict):
        model = json_to_flamo(model_or_ir, dtype=torch.float64, nfft=nfft, alias_decay_db=0.0)
        view = contextlib.nullcontext()
    else:
        model = model_or_ir
        view = analysis_view(model, dtype=torch.float64, nfft=nfft, alias_decay_db=0.0)
    with view:
        yield model if isinstance(model, system.Shell) else system.Shell(model)


MAX_NFFT = 1 << 24  # FLAMO's FFT when it grows to hold a long reverb's decay


def flamo_reference(model_or_ir, n_samples: int, nfft: int | None = None, alias_tolerance: float = 1e-11) -> tuple[np.ndarray, int]:
    """FLAMO's float64 impulse responses, shape ``(n_samples, n_out, n_in)``, and the nfft used.

    FLAMO's time response is circular over ``nfft`` samples: a given ``nfft`` is used as it is (refused when the
    response has not decayed within it); without one, the FFT starts at 4 x ``n_samples`` and grows (x4, up to
    2^24 samples) until the response has decayed within it (a long reverb needs more).
    """
    size = int(nfft or 1 << int(np.ceil(np.log2(4 * n_samples))))
    if size < n_samples:
        raise AdacError(f"verify: nfft ({size}) must be at least n_samples ({n_samples})")
    while True:
        with _float64_shell(model_or_ir, size) as shell:
            h = shell.get_time_response(identity=True)[0].detach().numpy()
        if h.ndim == 2:
            h = h[:, :, None]
        peak = np.abs(h).max()
        tail = np.abs(h[3 * size // 4:]).max()
        if not (peak > 0 and tail > alias_tolerance * peak):
            return h[:n_samples], size
        if nfft or size >= MAX_NFFT:
            raise AdacError(f"verify: the FLAMO response has not decayed within nfft = {size} samples (last quarter at "
                            f"{tail / peak:.2e} x peak): circular time aliasing would distort the reference; use a larger nfft")
        size *= 4


def flamo_frequency_response(model_or_ir, nfft: int) -> np.ndarray:
    """FLAMO's float64 frequency response on the ``nfft // 2 + 1`` rfft bins, shape ``(bins, n_out, n_in)``."""
    with _float64_shell(model_or_ir, nfft) as shell:
        h = shell.get_freq_response(identity=True)[0].detach().numpy()
    return h[:, :, None] if h.ndim == 2 else h
