"""Hypothesis strategies for random, schema-valid adac IR documents (``schemas/ir.schema.json``).

:func:`ir_documents` draws whole documents: every node kind of the schema (series, parallel, recursion,
delay, gain, householder, fir, sos, gain_delay), diagonal and non-diagonal, nested series, parallel
(summed and concatenated) and loops (loops inside loops, in feedforward and feedback paths), with extreme
but valid values: gains from subnormal to 1e300, exact zeros and ones, long and fractional delays,
filter sections with poles near, on and outside the unit circle, Hadamard, orthogonal, Householder,
permutation and rank-deficient matrices, arbitrary text in names and paths, optional FLAMO metadata.

Every document drawn satisfies the schema and :func:`adac.ir.validate_ir` (channel arities agree, shapes
match, delays are non-negative and integral when ``integer`` is set, Householder vectors are unit length,
sections are normalised); what a valid document may still legitimately be refused for (a delay-free
loop) is the code under test's business. The strategies hold no torch and no FAUST.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from scipy.linalg import hadamard

# composite levels drawn below the root (loops and their series add a few more): documents stay within about six
# levels, because adac.ir.validate_ir's JSON-schema check costs about twice as much per level of nesting
MAX_DEPTH = 3
LONG_DELAY = 96000  # samples: two seconds at 48 kHz, the longest delay drawn

# --- numbers ------------------------------------------------------------------------------------
# Arrays of values are drawn as (regime, seed) and filled from a numpy generator: two draws per array
# instead of one per value keeps 500 documents cheap to generate; the regime keeps the extremes frequent.

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0 ** -149, -(2.0 ** -149), 5e-324, 1e-45, 1e-300, 1e-7,
                    3.4028234663852886e38, 3.5e38, 1e38, 1e300, -1e300, 1.7976931348623157e308])
GAIN_REGIMES = ["ordinary", "ordinary", "ordinary", "mixed", "mixed", "special", "extreme", "zeros", "ones"]


def _fill(rng: np.random.Generator, regime: str, shape: tuple) -> np.ndarray:
    """Finite doubles of one regime: ordinary (|x| <= 2), special values, any magnitude from subnormal to
    the largest double, mostly zeros, or a mixture."""
    if regime == "ordinary":
        return rng.uniform(-2.0, 2.0, shape)
    if regime == "special":
        return rng.choice(SPECIAL, shape)
    if regime == "extreme":
        return rng.choice([-1.0, 1.0], shape) * np.minimum(10.0 ** rng.uniform(-323.0, 308.0, shape), 1.7976931348623157e308)
    if regime == "zeros":
        return np.where(rng.random(shape) < 0.7, 0.0, rng.uniform(-2.0, 2.0, shape))
    if regime == "ones":
        return rng.choice([1.0, -1.0, 0.0], shape)
    pick = rng.choice(3, shape, p=[0.7, 0.15, 0.15])  # mixed
    return np.where(pick == 0, _fill(rng, "ordinary", shape), np.where(pick == 1, _fill(rng, "special", shape),
                                                                      _fill(rng, "extreme", shape)))


seeds = st.integers(0, 2 ** 32 - 1)


@st.composite
def gain_arrays(draw, shape: tuple, regimes=tuple(GAIN_REGIMES)) -> list:
    return _fill(np.random.default_rng(draw(seeds)), draw(st.sampled_from(regimes)), shape).tolist()


@st.composite
def loop_gain_arrays(draw, shape: tuple) -> list:
    """Per-line gains for a loop: mostly below one (decaying), sometimes exactly one (lossless) or above."""
    rng = np.random.default_rng(draw(seeds))
    regime = draw(st.sampled_from(["decaying", "decaying", "decaying", "lossless", "edge", "growing", "any"]))
    if regime == "decaying":
        return (rng.uniform(0.0, 0.999, shape) * rng.choice([1.0, 1.0, -1.0], shape)).tolist()
    if regime == "lossless":
        return np.ones(shape).tolist()
    if regime == "edge":
        return rng.choice([1.0, -1.0, 0.0, 1 - 1e-7, 1.0000033, 0.9999999999], shape).tolist()
    if regime == "growing":
        return rng.uniform(0.999, 1.5, shape).tolist()
    return _fill(rng, "mixed", shape).tolist()


@st.composite
def delay_arrays(draw, shape: tuple, integer: bool, minimum: float = 0.0) -> list:
    """Delays in samples: short, medium, long (up to LONG_DELAY), edge values; fractional unless integer."""
    rng = np.random.default_rng(draw(seeds))
    lo = float(math.ceil(minimum))
    top = draw(st.sampled_from([8.0, 8.0, 400.0, 400.0, 5000.0, float(LONG_DELAY)]))
    values = np.floor(rng.uniform(lo, top + 1, shape))
    if not integer:
        regime = draw(st.sampled_from(["integral", "fractional", "fractional", "edge"]))
        if regime == "fractional":
            values = rng.uniform(minimum, top, shape)
        elif regime == "edge":
            values = values + rng.choice([0.5, 1e-9, 0.999999, -1e-7, 1e-7], shape)
        values = np.maximum(values, minimum)
    return values.tolist()


def extreme_scalar():
    return st.sampled_from(SPECIAL.tolist()) | st.floats(-2.0, 2.0) | st.floats(-1e300, 1e300)


# --- text ---------------------------------------------------------------------------------------

# any text, including quotes, backslashes, comment markers, newlines and non-ASCII
odd_text = st.one_of(st.text(max_size=30), st.sampled_from(['process', 'with', 'ma.SR', '*/ // "', '\\n"\n', 'a b.c-d',
                                                            '0', '_', '\u00e9\u4e2d\U0001f3b5', 'route', 'import("x.lib");']))
names = st.text(min_size=1, max_size=200)


# --- matrices -----------------------------------------------------------------------------------

def _orthogonal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@st.composite
def matrices(draw, n_out: int, n_in: int) -> list[list[float]]:
    """A ``[out][in]`` gain matrix: dense, sparse, rank one, zero, a permutation; square ones also
    orthogonal, rotation, Hadamard (scaled, signed, permuted) and near-Hadamard."""
    shapes = ["dense", "sparse", "rank1", "zero", "constant"]
    if n_in == n_out:
        shapes += ["orthogonal", "orthogonal", "permutation", "identity", "rotation"]
        if n_in >= 2 and n_in & (n_in - 1) == 0:
            shapes += ["hadamard", "hadamard", "near_hadamard"]
    shape = draw(st.sampled_from(shapes))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    if shape == "dense":
        m = np.array(draw(gain_arrays((n_out, n_in))))
    elif shape == "sparse":
        m = np.array(draw(gain_arrays((n_out, n_in), ("zeros",))))
    elif shape == "rank1":
        m = np.outer(rng.standard_normal(n_out), rng.standard_normal(n_in))
    elif shape == "zero":
        m = np.zeros((n_out, n_in))
    elif shape == "constant":
        m = np.full((n_out, n_in), draw(extreme_scalar()))
    elif shape == "orthogonal":
        m = _orthogonal(n_in, seed) * draw(st.sampled_from([1.0, 0.9, 0.999999, 1.1]))
    elif shape == "permutation":
        m = np.eye(n_in)[rng.permutation(n_in)]
    elif shape == "identity":
        m = np.eye(n_in)
    elif shape == "rotation":
        m = np.eye(n_in)
        if n_in >= 2:
            theta = draw(st.floats(-math.pi, math.pi))
            i, j = rng.choice(n_in, 2, replace=False)
            m[i, i] = m[j, j] = math.cos(theta)
            m[i, j], m[j, i] = -math.sin(theta), math.sin(theta)
    else:  # hadamard, scaled by row/column factors, signs and permutations
        h = hadamard(n_in).astype(float) / math.sqrt(n_in)
        h = h[rng.permutation(n_in)][:, rng.permutation(n_in)]
        if draw(st.booleans()):
            h = h * rng.choice([-1.0, 1.0], n_in)[:, None]
        if draw(st.booleans()):
            h = h * np.array([draw(st.one_of(st.floats(0.1, 1.0), st.sampled_from([1e-30, 1e30, -0.5])))
                              for _ in range(n_in)])[None, :]
        if shape == "near_hadamard":
            i, j = rng.integers(0, n_in, 2)
            h[i, j] *= 1 + draw(st.sampled_from([1e-13, 1e-11, 1e-6]))
        m = h
    return m.tolist()


@st.composite
def unit_vectors(draw, n: int) -> list[float]:
    """A unit vector for a Householder matrix (|u.u - 1| <= 1e-9 as the IR requires): random, one-hot,
    with tiny components, or uniform."""
    kind = draw(st.sampled_from(["random", "random", "onehot", "tiny", "uniform"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    if kind == "onehot":
        u = np.zeros(n)
        u[rng.integers(n)] = draw(st.sampled_from([1.0, -1.0]))
    elif kind == "uniform":
        u = np.full(n, 1 / math.sqrt(n))
    else:
        u = rng.standard_normal(n)
        if kind == "tiny" and n > 1:
            u[1:] *= draw(st.sampled_from([1e-9, 1e-30, 1e-300, 0.0]))
        u = u / np.linalg.norm(u)
    if abs(float(np.dot(u, u)) - 1.0) > 1e-9:  # never: a normalised vector in double precision
        u = u / math.sqrt(float(np.dot(u, u)))
    return u.tolist()


# --- second-order sections ----------------------------------------------------------------------

SECTION_KINDS = ["complex", "complex", "real", "fir", "raw", "near", "outside"]
NUMERATORS = ["random", "random", "zero", "lowpass", "extreme"]


def _section(rng: np.random.Generator, kind: str, numerator: str) -> list[float]:
    """One normalised section ``[b0, b1, b2, 1, a1, a2]``: complex or real poles at any radius (close to
    the unit circle, on it, outside it), FIR-only sections, arbitrary coefficients, zero numerators."""
    if kind in ("complex", "near", "outside"):
        if kind == "complex":
            r = rng.uniform(0.0, 0.99)
        elif kind == "near":
            r = 1.0 - rng.choice([1e-2, 1e-4, 1e-6, 3.3e-6, 1e-7, 1e-9, 1e-12, 0.0])
        else:
            r = rng.choice([1.0, 1.0000033, 1.001, 1.5, 10.0])
        theta = rng.uniform(0.0, math.pi) if rng.random() < 0.7 else rng.choice([0.0, math.pi, 1e-6, math.pi - 1e-6, 1e-3])
        a1, a2 = -2 * r * math.cos(theta), r * r
    elif kind == "real":
        p1, p2 = rng.uniform(-0.999999, 0.999999, 2)
        a1, a2 = -(p1 + p2), p1 * p2
    elif kind == "fir":
        a1 = a2 = 0.0
    else:
        a1, a2 = rng.uniform(-3.0, 3.0), rng.uniform(-2.0, 2.0)
    if numerator == "zero":
        b = [0.0, 0.0, 0.0]
    elif numerator == "lowpass":
        g = (1 + a1 + a2) / 4
        b = [g, 2 * g, g]
    elif numerator == "extreme":
        b = _fill(rng, "mixed", (3,)).tolist()
    else:
        b = rng.uniform(-2.0, 2.0, 3).tolist()
    return [*b, 1.0, float(a1), float(a2)]


# --- nodes --------------------------------------------------------------------------------------

def _diagonal_ok(n_in: int, n_out: int, draw) -> bool:
    return n_in == n_out and draw(st.booleans())


@st.composite
def delay_nodes(draw, n_in: int, n_out: int, minimum: float = 0.0, kind: str = "delay", in_loop: bool = False) -> dict:
    diagonal = _diagonal_ok(n_in, n_out, draw)
    integer = draw(st.booleans())
    shape = (n_in,) if diagonal else (n_out, n_in)
    node = {"kind": kind, "in": n_in, "out": n_out, "diagonal": diagonal, "integer": integer,
            "samples": draw(delay_arrays(shape, integer, minimum))}
    if kind == "gain_delay":
        node["gains"] = draw(loop_gain_arrays(shape) if in_loop else gain_arrays(shape))
    return node


@st.composite
def gain_nodes(draw, n_in: int, n_out: int, in_loop: bool = False) -> dict:
    if _diagonal_ok(n_in, n_out, draw):
        gains = draw(loop_gain_arrays((n_in,)) if in_loop else gain_arrays((n_in,)))
        node = {"kind": "gain", "in": n_in, "out": n_out, "diagonal": True, "gains": gains}
        if draw(st.integers(0, 5)) == 0:
            node["matrix"] = draw(matrices(n_out, n_in))  # an unused matrix beside the gains: still valid
    else:
        node = {"kind": "gain", "in": n_in, "out": n_out, "diagonal": False, "matrix": draw(matrices(n_out, n_in))}
    if draw(st.booleans()):
        node["structure"] = draw(st.sampled_from(["dense", "orthogonal", "hadamard", "rotation"]))  # a hint, maybe wrong
    return node


@st.composite
def householder_nodes(draw, n: int) -> dict:
    return {"kind": "householder", "in": n, "out": n, "u": draw(unit_vectors(n))}


@st.composite
def fir_nodes(draw, n_in: int, n_out: int) -> dict:
    diagonal = _diagonal_ok(n_in, n_out, draw)
    length = draw(st.one_of(st.integers(1, 4), st.integers(1, 4), st.integers(1, 24)))
    shape = (n_in,) if diagonal else (n_out, n_in)
    leading_zero = draw(st.booleans())  # a FIR that starts with a zero tap holds a one-sample delay
    taps = np.array(draw(gain_arrays((length, *shape))))
    if leading_zero:
        taps[0] = 0.0
    taps = taps.tolist()
    return {"kind": "fir", "in": n_in, "out": n_out, "diagonal": diagonal, "taps": taps}


@st.composite
def sos_nodes(draw, n_in: int, n_out: int) -> dict:
    diagonal = _diagonal_ok(n_in, n_out, draw)
    k = draw(st.integers(1, 3))
    paths = [n_in] if diagonal else [n_out, n_in]
    n_paths = int(np.prod(paths))
    # sections[k][6][paths...]: one section per (k, path), then the coefficient axis moved into place
    rng = np.random.default_rng(draw(seeds))
    kinds = draw(st.sampled_from([SECTION_KINDS, ["near"], ["outside", "complex"], ["fir", "raw"], ["complex"]]))
    numerators = draw(st.sampled_from([NUMERATORS, ["random"], ["extreme"], ["zero", "random"]]))
    drawn = np.array([[_section(rng, rng.choice(kinds), rng.choice(numerators)) for _ in range(n_paths)]
                      for _ in range(k)])  # (k, paths, 6)
    arr = np.moveaxis(drawn, 2, 1).reshape([k, 6, *paths])
    arr[:, 3] = 1.0
    return {"kind": "sos", "in": n_in, "out": n_out, "diagonal": diagonal, "sections": arr.tolist()}


def _leaf_kinds(n_in: int, n_out: int) -> list[str]:
    kinds = ["gain", "gain", "delay", "fir", "sos", "gain_delay"]
    if n_in == n_out:
        kinds.append("householder")
    return kinds


channels = st.sampled_from([1, 1, 2, 2, 2, 3, 3, 4, 4, 8])  # 8: Hadamard and Householder sizes beyond 4


@st.composite
def nodes(draw, n_in: int, n_out: int, depth: int = MAX_DEPTH, in_loop: bool = False) -> dict:
    """A node taking ``n_in`` channels and giving ``n_out``, composite up to ``depth`` levels deep."""
    kinds = _leaf_kinds(n_in, n_out)
    if depth > 0:
        kinds += ["series", "series", "parallel", "parallel", "recursion", "recursion"]
    kind = draw(st.sampled_from(kinds))
    if kind == "gain":
        node = draw(gain_nodes(n_in, n_out, in_loop))
    elif kind in ("delay", "gain_delay"):
        node = draw(delay_nodes(n_in, n_out, kind=kind, in_loop=in_loop))
    elif kind == "householder":
        node = draw(householder_nodes(n_in))
    elif kind == "fir":
        node = draw(fir_nodes(n_in, n_out))
    elif kind == "sos":
        node = draw(sos_nodes(n_in, n_out))
    elif kind == "series":
        count = draw(st.integers(1, 3))
        widths = [n_in] + [draw(st.integers(1, 4)) for _ in range(count - 1)] + [n_out]
        children = [draw(nodes(a, b, depth - 1, in_loop)) for a, b in zip(widths, widths[1:])]
        node = {"kind": "series", "in": n_in, "out": n_out, "children": children}
    elif kind == "parallel":
        summed = n_out < 2 or draw(st.booleans())
        if summed:
            children = [draw(nodes(n_in, n_out, depth - 1, in_loop)) for _ in range(2)]
        else:
            split = draw(st.integers(1, n_out - 1))
            children = [draw(nodes(n_in, split, depth - 1, in_loop)), draw(nodes(n_in, n_out - split, depth - 1, in_loop))]
        node = {"kind": "parallel", "in": n_in, "out": n_out, "sum_output": summed, "children": children}
    else:
        node = draw(loops(n_in, n_out, depth - 1))
    return node


@st.composite
def loops(draw, n_in: int, n_out: int, depth: int) -> dict:
    """``y = F(x + G y)``: an FDN-like loop (delay lines, a mixing matrix, per-line gains, maybe filters),
    or a loop of random paths, which may be delay-free (refused) or unstable (not certified)."""
    shape = draw(st.sampled_from(["fdn", "fdn", "feedback_delay", "random"]))
    if shape == "fdn":
        n = n_in
        feedforward = draw(delay_nodes(n, n_out, minimum=1.0)) if n_in != n_out else \
            {"kind": "delay", "in": n, "out": n, "diagonal": True, "integer": draw(st.booleans()), "samples": []}
        if feedforward["kind"] == "delay" and feedforward["diagonal"] and not feedforward["samples"]:
            feedforward["samples"] = draw(delay_arrays((n,), feedforward["integer"], 1.0))
        mix = draw(st.sampled_from(["matrix", "householder"])) if n_out == n_in else "matrix"
        parts = [draw(householder_nodes(n_in)) if mix == "householder" else draw(gain_nodes(n_out, n_in, in_loop=True))]
        if n_in == n_out or draw(st.booleans()):
            parts.append({"kind": "gain", "in": n_in, "out": n_in, "diagonal": True,
                          "gains": draw(loop_gain_arrays((n_in,)))})
        if draw(st.booleans()):
            parts.append(draw(sos_nodes(n_in, n_in)))
        if depth > 0 and draw(st.integers(0, 3)) == 0:
            parts.append(draw(nodes(n_in, n_in, depth, in_loop=True)))
        parts = draw(st.permutations(parts))
        widths = [n_out] + [p["in"] for p in parts[1:]] + [n_in]
        fixed = []
        for p, a, b in zip(parts, widths, widths[1:]):
            fixed.append(p if (p["in"], p["out"]) == (a, b) else draw(gain_nodes(a, b, in_loop=True)))
        feedback = fixed[0] if len(fixed) == 1 else {"kind": "series", "in": n_out, "out": n_in, "children": fixed}
    elif shape == "feedback_delay":
        feedforward = draw(nodes(n_in, n_out, depth, in_loop=True))
        delay = draw(delay_nodes(n_out, n_in, minimum=1.0, kind=draw(st.sampled_from(["delay", "gain_delay"])), in_loop=True))
        rest = draw(nodes(n_in, n_in, 0, in_loop=True))
        feedback = {"kind": "series", "in": n_out, "out": n_in, "children": draw(st.permutations([delay, rest]))
                    if delay["out"] == delay["in"] else [delay, rest]}
    else:
        feedforward = draw(nodes(n_in, n_out, depth, in_loop=True))
        feedback = draw(nodes(n_out, n_in, depth, in_loop=True))
    return {"kind": "recursion", "in": n_in, "out": n_out, "feedforward": feedforward, "feedback": feedback}


# --- documents ----------------------------------------------------------------------------------

def _walk(node: dict):
    yield node
    for child in node.get("children", []):
        yield from _walk(child)
    for key in ("feedforward", "feedback"):
        if key in node:
            yield from _walk(node[key])


flamo_modules = st.fixed_dictionaries(
    {"class": st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,12}\Z"),
     "args": st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=2),
     "param": st.one_of(st.floats(-1e3, 1e3), st.lists(st.floats(-1e3, 1e3), max_size=3)),
     "map": st.sampled_from(["constructor", "baked", "custom"])},
    optional={"state": st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)})


@st.composite
def _decorate(draw, graph: dict) -> dict:
    """Ids (unique, in any order), paths, and the optional fields a node may carry."""
    all_nodes = list(_walk(graph))
    numbers = draw(st.lists(st.integers(0, 10 ** 6), min_size=len(all_nodes), max_size=len(all_nodes), unique=True))
    zero_padded = draw(st.booleans())
    for node, number in zip(all_nodes, numbers):
        node["id"] = f"n{number:07d}" if zero_padded else f"n{number}"
        node["path"] = draw(st.one_of(st.just(""), odd_text))
        if draw(st.integers(0, 3)) == 0:
            node["name"] = draw(odd_text)
        if draw(st.integers(0, 7)) == 0:
            node["flamo"] = draw(flamo_modules)
        if node["kind"] in ("series", "parallel", "recursion") and draw(st.integers(0, 3)) == 0:
            node["flamo_container"] = draw(st.sampled_from(["Series", "Parallel", "Recursion", "Shell"]))
    return graph


@st.composite
def ir_documents(draw, max_depth: int = MAX_DEPTH) -> dict:
    """A whole IR document that the schema and :func:`adac.ir.validate_ir` accept."""
    n_in, n_out = draw(channels), draw(channels)
    shape = draw(st.sampled_from(["any", "any", "loop", "wrapped_loop"]))  # loops at the root half the time
    if shape == "any":
        graph = draw(nodes(n_in, n_out, max_depth))
    elif shape == "loop":
        graph = draw(loops(n_in, n_out, max_depth - 1))
    else:
        width = draw(channels)
        graph = {"kind": "series", "in": n_in, "out": n_out,
                 "children": [draw(nodes(n_in, width, 0)), draw(loops(width, width, max_depth - 2)), draw(nodes(width, n_out, 0))]}
    graph = draw(_decorate(graph))
    document = {
        "format": "adac-ir",
        "version": draw(st.sampled_from(["1.0", "1.0", "1.1", "1.42"])),
        "name": draw(names),
        "fs": draw(st.one_of(st.sampled_from([44100, 48000, 96000, 192000, 1, 8000]), st.integers(1, 768000))),
        "input_channels": n_in,
        "output_channels": n_out,
        "graph": graph,
        "flamo": {"version": draw(st.sampled_from(["0.2.20", "0.0.0", ""])), "nfft": draw(st.integers(2, 1 << 20)),
                  "alias_decay_db": draw(st.floats(-100.0, 100.0)), "dtype": draw(st.sampled_from(["float32", "float64"])),
                  "shell": draw(st.one_of(st.none(), st.fixed_dictionaries({}, optional={"input_layer": st.text(max_size=8),
                                                                                         "output_layer": st.text(max_size=8)})))},
    }
    if draw(st.booleans()):
        document["adac_version"] = draw(st.sampled_from(["0.1.0", "9.9.9", ""]))
    if draw(st.integers(0, 4)) == 0:
        document["controls"] = {}
    return document
