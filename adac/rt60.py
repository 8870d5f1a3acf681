"""Reverberation time: Schroeder backward integration, T20/T30 line fits, and the trained T60 of an IR.

``decay_time(h, fs, fit=(-5, -35))`` fits the energy decay curve between -5 and
-35 dB (T30) and extrapolates to 60 dB; ``fit=T20`` (-5..-25 dB) gives T20.
Multichannel responses (``(n, ...)``) use the summed energy of every path: the
*broadband* T60 of the whole model (every output for every input).

``ir_decay_time(config)`` is the broadband T30 of an IR's model, from an exact
float64 time-domain simulation of the IR graph (:func:`simulate`): no FAUST, no
C++ compiler and no frequency grid (a frequency-domain evaluation costs
O(N^3) per bin and gigabytes for N = 32 lines; the simulation runs in blocks as
long as each loop's latency, in O(samples)).
"""
from __future__ import annotations

import copy

import numpy as np
from scipy.signal import lfilter, sosfilt

try:  # scipy's kernel without the public wrapper's validation: ~30x less overhead per short block
    from scipy.signal._sosfilt import _sosfilt
except ImportError:  # pragma: no cover - other scipy versions
    _sosfilt = None

from .errors import AdacError

T30 = (-5.0, -35.0)
T20 = (-5.0, -25.0)


def energy_decay_curve(h: np.ndarray) -> np.ndarray:
    """Schroeder's backward-integrated energy, in dB relative to the total (axis 0 is time)."""
    energy = np.asarray(h, dtype=float) ** 2
    if energy.ndim > 1:
        energy = energy.reshape(energy.shape[0], -1).sum(axis=1)
    remaining = np.cumsum(energy[::-1])[::-1]
    with np.errstate(divide="ignore"):
        return 10 * np.log10(remaining / remaining[0])


def decay_time(h: np.ndarray, fs: int, fit: tuple[float, float] = T30) -> float:
    """T60 in seconds from a least-squares line fitted to the EDC between ``fit`` dB (T30 by default)."""
    edc = energy_decay_curve(h)
    hi, lo = fit
    window = np.nonzero((edc <= hi) & (edc >= lo))[0]
    if len(window) < 2 or edc[-1] > lo:
        raise AdacError(f"rt60: the response does not decay below {lo} dB within {len(edc)} samples "
                        f"({len(edc) / fs:.3g} s)")
    slope, _ = np.polyfit(window / fs, edc[window], 1)
    return float(-60.0 / slope)


# --- time-domain simulation of an IR graph (float64, block processing) -----------------------------


def _paths(node: dict):
    """``(out, in, lag, coefficient)`` taps of a delay / gain_delay node (fractional delays as Lagrange FIRs)."""
    from .fractional import lagrange

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
            base, coefficients = lagrange(float(d), node.get("_order", 15))
            taps += [(m, n, base + k, g * c) for k, c in enumerate(coefficients) if c != 0]
    return taps


class _Block:
    """A node as a stateful block processor: ``process(x)`` with ``x`` of shape ``(in, T)``."""

    latency = 0  # a lower bound of the delay from any input to any output (samples)

    def __init__(self, node: dict):
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


class _Gain(_Block):
    def __init__(self, node):
        super().__init__(node)
        if node["kind"] == "householder":
            u = np.asarray(node["u"], dtype=float)
            self.matrix = np.eye(len(u)) - 2 * np.outer(u, u)
        else:
            self.matrix = np.diag(node["gains"]) if node["diagonal"] else np.asarray(node["matrix"], dtype=float)

    def process(self, x):
        return self.matrix @ x


class _Taps(_Block):
    """Sparse multi-path delays with a history buffer (delay, gain_delay)."""

    def __init__(self, node):
        super().__init__(node)
        self.taps = _paths(node)
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


class _Filters(_Block):
    """Per-path IIR (sos) or FIR filters with their states."""

    def __init__(self, node):
        super().__init__(node)
        from .faust_backend import emitted_section

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


class _Series(_Block):
    def __init__(self, node):
        super().__init__(node)
        self.children = [_processor(c) for c in node["children"]]
        self.latency = sum(c.latency for c in self.children)

    def process(self, x):
        for child in self.children:
            x = child.process(x)
        return x


class _Parallel(_Block):
    def __init__(self, node):
        super().__init__(node)
        self.children = [_processor(c) for c in node["children"]]
        self.latency = min(c.latency for c in self.children)

    def process(self, x):
        a, b = (c.process(x) for c in self.children)
        return a + b if self.node["sum_output"] else np.concatenate([a, b])


class _Recursion(_Block):
    """``y = F(x + G y)`` in blocks no longer than the loop's latency L: within a block the loop's own
    output cannot reach its input, so ``y = F(x + G_free)``, with ``G_free`` the response of G's state
    to silence (computed on a copy); then both paths advance on the true signals."""

    def __init__(self, node):
        super().__init__(node)
        self.f, self.g = _processor(node["feedforward"]), _processor(node["feedback"])
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


def _processor(node: dict) -> _Block:
    kind = node["kind"]
    if kind in ("gain", "householder"):
        return _Gain(node)
    if kind in ("delay", "gain_delay"):
        return _Taps(node)
    if kind in ("sos", "fir"):
        return _Filters(node)
    return {"series": _Series, "parallel": _Parallel, "recursion": _Recursion}[kind](node)


class Simulation:
    """An IR's impulse responses, simulated in float64 and continued on demand.

    ``next(n)`` returns the next ``n`` samples, shape ``(n, out, in)`` (one
    processor per input channel, each fed a unit impulse at sample 0).
    """

    def __init__(self, config: dict, fractional_order: int = 15):
        graph = copy.deepcopy(config["graph"])
        from .ir import iter_nodes

        for node, _ in iter_nodes(graph):
            node["_order"] = fractional_order
        self.processors = [_processor(graph) for _ in range(config["input_channels"])]
        self.n_in, self.n_out, self.t = config["input_channels"], config["output_channels"], 0

    def next(self, n: int) -> np.ndarray:
        out = np.zeros((n, self.n_out, self.n_in))
        for i, proc in enumerate(self.processors):
            x = np.zeros((self.n_in, n))
            if self.t == 0:
                x[i, 0] = 1.0
            out[:, :, i] = proc.process(x).T
        self.t += n
        return out


def simulate(config: dict, n_samples: int, fractional_order: int = 15) -> np.ndarray:
    """Impulse responses ``(n_samples, out, in)`` of an IR, simulated exactly in float64 (no rendering)."""
    return Simulation(config, fractional_order).next(n_samples)


def ir_decay_time(config: dict, fit: tuple[float, float] = T30, max_seconds: float = 60.0,
                  tail_db: float = -75.0) -> float:
    """Broadband T60 (T30 by default) of an IR's model, from its simulated impulse responses.

    The simulation runs on, one second at a time, until the energy of the last
    100 ms lies ``tail_db`` below the total (the truncated tail then shifts the
    EDC by far less than the fit needs), or ``max_seconds`` (a model that does
    not decay raises an AdacError).
    """
    fs = config["fs"]
    sim = Simulation(config)
    chunk, window = fs, max(1, fs // 10)
    parts = []
    energy_total = 0.0
    while True:
        block = sim.next(chunk)
        parts.append(block)
        energy = (block.reshape(chunk, -1) ** 2).sum(axis=1)
        energy_total += float(energy.sum())
        tail = float(energy[-window:].sum())
        seconds = len(parts) * chunk / fs
        if energy_total > 0 and tail <= energy_total * 10 ** (tail_db / 10):
            return decay_time(np.concatenate(parts), fs, fit)
        if energy_total == 0:
            raise AdacError(f"rt60: the model of {config.get('name')!r} has a zero impulse response")
        if seconds >= max_seconds:
            raise AdacError(f"rt60: the model of {config.get('name')!r} does not decay {-tail_db:.0f} dB within "
                            f"{max_seconds:g} s (a lossless or unstable loop has no finite reverberation time)")


def loop_count(config: dict) -> int:
    from .ir import iter_nodes

    return sum(node["kind"] == "recursion" for node, _ in iter_nodes(config["graph"]))


__all__ = ["T20", "T30", "energy_decay_curve", "decay_time", "simulate", "Simulation", "ir_decay_time", "loop_count"]
