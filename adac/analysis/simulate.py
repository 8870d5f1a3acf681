"""Time-domain simulation of an IR graph in float64, in blocks (reads only the IR).

``simulate(ir, n)`` gives the impulse responses ``(n, out, in)`` of the model as the emitted code
realises it (sections as :func:`adac.ir.sections.emitted_section` in float64, fractional delays as the
emitted Lagrange interpolator): no FAUST, no C++ compiler and no frequency grid. Loops run in blocks as
long as their latency, in O(samples). Each IR kind is one processor class in :data:`PROCESSORS`.
"""
from __future__ import annotations

import copy

import numpy as np
from scipy.signal import lfilter, sosfilt

try:  # scipy's kernel without the public wrapper's validation: ~30x less overhead per short block
    from scipy.signal._sosfilt import _sosfilt
except ImportError:  # pragma: no cover - other scipy versions
    _sosfilt = None

from ..common.errors import AdacError
from ..ir import KindTable
from ..ir.fractional import DEFAULT_ORDER, lagrange
from ..ir.sections import emitted_section

PROCESSORS = KindTable("time-domain simulation")


def _paths(node: dict, fractional_order: int):
    """``(out, in, lag, coefficient)`` taps of a delay / gain_delay node (fractional delays as Lagrange FIRs)."""
    samples = np.asarray(node["samples"], dtype=float)
    gains = np.asarray(node.get("gains", np.ones_like(samples)), dtype=float)
    pairs = [(n, n) for n in range(node["in"])] if node["diagonal"] else \
        [(m, n) for m in range(node["out"]) for n in range(node["in"])]
    taps = []
    for m, n in pairs:
        d, g = (samples[n], gains[n]) if node["diagonal"] else (samples[m, n], gains[m, n])
        if g == 0:
            continue
        if d == round(d):
            taps.append((m, n, int(round(d)), g))
        else:
            base, coefficients = lagrange(float(d), fractional_order)
            taps += [(m, n, base + k, g * c) for k, c in enumerate(coefficients) if c != 0]
    return taps


class _Block:
    """A node as a stateful block processor: ``process(x)`` with ``x`` of shape ``(in, T)``."""

    latency = 0  # a lower bound of the delay from any input to any output (samples)

    def __init__(self, node: dict, fractional_order: int):
        self.node = node  # read only: shared by copies
        self.n_in, self.n_out = node["in"], node["out"]

    def __deepcopy__(self, memo):
        # copy the state (arrays, child processors), share the parameters' source (the node)
        def clone(value):
            if isinstance(value, np.ndarray):
                return value.copy()
            if isinstance(value, _Block):
                return copy.deepcopy(value, memo)
            if isinstance(value, list):
                return [clone(v) for v in value]
            return value

        new = copy.copy(self)
        new.__dict__.update({k: clone(v) for k, v in self.__dict__.items() if k != "node"})
        return new


@PROCESSORS.register("gain", "householder")
class _Gain(_Block):
    def __init__(self, node, fractional_order):
        super().__init__(node, fractional_order)
        if node["kind"] == "householder":
            u = np.asarray(node["u"], dtype=float)
            self.matrix = np.eye(len(u)) - 2 * np.outer(u, u)
        else:
            self.matrix = np.diag(node["gains"]) if node["diagonal"] else np.asarray(node["matrix"], dtype=float)

    def process(self, x):
        return self.matrix @ x


@PROCESSORS.register("delay", "gain_delay")
class _Taps(_Block):
    """Sparse multi-path delays with a history buffer (delay, gain_delay)."""

    def __init__(self, node, fractional_order):
        super().__init__(node, fractional_order)
        self.taps = _paths(node, fractional_order)
        self.history_len = max([lag for _, _, lag, _ in self.taps], default=0)
        self.latency = min([lag for _, _, lag, _ in self.taps], default=0)
        self.history = np.zeros((self.n_in, self.history_len))

    def process(self, x):
        t = x.shape[1]
        ext = np.concatenate([self.history, x], axis=1)
        y = np.zeros((self.n_out, t))
        h = self.history_len
        for m, n, lag, g in self.taps:
            y[m] += g * ext[n, h - lag:h - lag + t]
        if h:
            self.history = ext[:, -h:]
        return y


@PROCESSORS.register("sos", "fir")
class _Filters(_Block):
    """Per-path IIR (sos) or FIR filters with their states."""

    def __init__(self, node, fractional_order):
        super().__init__(node, fractional_order)
        diagonal = node["diagonal"]
        self.pairs = [(n, n) for n in range(self.n_in)] if diagonal else \
            [(m, n) for m in range(self.n_out) for n in range(self.n_in)]
        self.filters, self.states = [], []
        if node["kind"] == "sos":
            sections = np.asarray(node["sections"], dtype=float)
            for m, n in self.pairs:
                s = sections[:, :, n] if diagonal else sections[:, :, m, n]
                sos = np.array([emitted_section(sec, np.float64) for sec in s])
                self.filters.append(sos)
                self.states.append(np.zeros((1, len(sos), 2)))
        else:  # fir
            taps = np.asarray(node["taps"], dtype=float)
            lat = []
            for m, n in self.pairs:
                h = taps[:, n] if diagonal else taps[:, m, n]
                self.filters.append(h)
                self.states.append(np.zeros(max(len(h) - 1, 1)))
                nonzero = np.nonzero(h)[0]
                lat.append(int(nonzero[0]) if len(nonzero) else len(h))
            self.latency = min(lat)

    def process(self, x):
        y = np.zeros((self.n_out, x.shape[1]))
        for i, (m, n) in enumerate(self.pairs):
            if self.node["kind"] == "sos":
                if _sosfilt is not None:
                    out = np.array(x[n:n + 1], dtype=np.float64, order="C")
                    _sosfilt(self.filters[i], out, self.states[i])  # in place: out and the state
                    out = out[0]
                else:
                    out, zf = sosfilt(self.filters[i], x[n], zi=self.states[i][0])
                    self.states[i] = zf[None]
            else:
                h = self.filters[i]
                if len(h) == 1:
                    out = h[0] * x[n]
                else:
                    out, self.states[i] = lfilter(h, [1.0], x[n], zi=self.states[i])
            y[m] += out
        return y


@PROCESSORS.register("series")
class _Series(_Block):
    def __init__(self, node, fractional_order):
        super().__init__(node, fractional_order)
        self.children = [PROCESSORS(c, fractional_order) for c in node["children"]]
        self.latency = sum(c.latency for c in self.children)

    def process(self, x):
        for child in self.children:
            x = child.process(x)
        return x


@PROCESSORS.register("parallel")
class _Parallel(_Block):
    def __init__(self, node, fractional_order):
        super().__init__(node, fractional_order)
        self.children = [PROCESSORS(c, fractional_order) for c in node["children"]]
        self.latency = min(c.latency for c in self.children)

    def process(self, x):
        a, b = (c.process(x) for c in self.children)
        return a + b if self.node["sum_output"] else np.concatenate([a, b])


@PROCESSORS.register("recursion")
class _Recursion(_Block):
    """``y = F(x + G y)`` in blocks no longer than the loop's latency L: within a block the loop's own
    output cannot reach its input, so ``y = F(x + G_free)``, with ``G_free`` the response of G's state
    to silence (computed on a copy); then both paths advance on the true signals."""

    def __init__(self, node, fractional_order):
        super().__init__(node, fractional_order)
        self.f, self.g = PROCESSORS(node["feedforward"], fractional_order), PROCESSORS(node["feedback"], fractional_order)
        self.loop_latency = self.f.latency + self.g.latency
        if self.loop_latency < 1:
            raise AdacError(f"{node.get('path') or '<root>'}: delay-free loop cannot be simulated")
        self.latency = self.f.latency

    def process(self, x):
        out = np.zeros((self.n_out, x.shape[1]))
        step = self.loop_latency
        for start in range(0, x.shape[1], step):
            xb = x[:, start:start + step]
            free = copy.deepcopy(self.g).process(np.zeros((self.n_out, xb.shape[1])))
            y = copy.deepcopy(self.f).process(xb + free)
            self.f.process(xb + self.g.process(y))
            out[:, start:start + step] = y
        return out


class Simulation:
    """An IR's impulse responses, simulated in float64 and continued on demand.

    ``next(n)`` returns the next ``n`` samples, shape ``(n, out, in)`` (one
    processor per input channel, each fed a unit impulse at sample 0).
    """

    def __init__(self, ir: dict, fractional_order: int = DEFAULT_ORDER):
        self.processors = [PROCESSORS(ir["graph"], fractional_order) for _ in range(ir["input_channels"])]
        self.n_in, self.n_out, self.t = ir["input_channels"], ir["output_channels"], 0

    def next(self, n: int) -> np.ndarray:
        out = np.zeros((n, self.n_out, self.n_in))
        for i, proc in enumerate(self.processors):
            x = np.zeros((self.n_in, n))
            if self.t == 0:
                x[i, 0] = 1.0
            out[:, :, i] = proc.process(x).T
        self.t += n
        return out


def simulate(ir: dict, n_samples: int, fractional_order: int = DEFAULT_ORDER) -> np.ndarray:
    """Impulse responses ``(n_samples, out, in)`` of an IR, simulated exactly in float64 (no rendering)."""
    return Simulation(ir, fractional_order).next(n_samples)
