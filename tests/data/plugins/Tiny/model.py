"""A 4-line FDN for fast build tests: build_model(fs) -> Shell (1 in, 1 out)."""
from collections import OrderedDict

import torch
from flamo.processor import dsp, system

DELAYS = [97, 131, 163, 197]


def build_model(fs: int = 48000):
    torch.manual_seed(0)
    lines = dsp.parallelDelay(size=(4,), max_len=200, isint=True, fs=fs, device="cpu")
    lines.assign_value(lines.sample2s(torch.tensor(DELAYS, dtype=torch.float32)))
    matrix = dsp.Matrix(size=(4, 4), matrix_type="orthogonal", requires_grad=True, device="cpu")
    gains = dsp.parallelGain(size=(4,), device="cpu")
    gains.assign_value(10 ** (-3 * torch.tensor(DELAYS, dtype=torch.float32) / (fs * 0.3)))
    loop = system.Recursion(lines, system.Series(OrderedDict(mixing_matrix=matrix, attenuation=gains)))
    return system.Shell(system.Series(OrderedDict(
        input_gain=dsp.Gain(size=(4, 1), device="cpu"), feedback_loop=loop, output_gain=dsp.Gain(size=(1, 4), device="cpu"))))
