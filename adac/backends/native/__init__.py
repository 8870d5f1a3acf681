"""Native backend: the IR's feedback delay networks as a C++ block kernel, the rest of the graph as FAUST code.

FAUST computes sample by sample, so a dense feedback matrix inside a loop is N dot products per sample in
scalar code. An FDN's feedforward path is a bank of integer delay lines (shortest ``D``): over a block of
``B <= D`` samples every line's output is already in its buffer, so the loop runs a block at a time::

    r[t]  = line outputs (read from the past)              q = r . gamma^d   (the rt60 control; else q = r)
    y     = q                                              (the loop's output, on into the graph)
    w[t]  = u[t] + G(q)[t]                                 (u: the loop's input; G the feedback path, here as
                                                            matrix products over the whole block)

The loop's input ``u`` needs the graph before it, its output ``y`` feeds the graph after it, and both may be
anything FAUST realises. So the graph becomes **one** FAUST program in which each kernel loop is cut open:
its output is an extra input of the program (``r``), its input an extra output (``u``, and ``q`` with the rt60
control). Per block the generated class reads ``r`` from the lines, runs the FAUST program, applies ``G`` to
``q`` in C++ and writes ``w = u + G q`` back. The controls, the metadata and the UI are the FAUST program's,
so the class is a drop-in for the one ``faust -lang cpp`` emits from :func:`adac.backends.faust.json_to_faust`.

A kernel loop: a recursion whose feedforward path is a bank of integer delay lines and whose feedback path is
a series of gains (dense, diagonal, Hadamard), Householder reflections and per-line sections, not inside
another loop. Other loops stay in the FAUST program; an IR without a kernel loop is refused
(:class:`NativeUnsupported`), as only FAUST builds it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...common import toolchain
from ...common.errors import AdacError
from ...ir import KindTable
from ...ir.fractional import DEFAULT_ORDER
from ...ir.hadamard import hadamard_form
from ...ir.passes import fold_gains, is_delay_bank
from ...ir.sections import svf_parameters
from ..faust import check_ir, program_text
from ..faust.controls import prepare_controls
from ..faust.emit import EmitContext, comment, emit_node, number, route
from ..faust.render import RENDER_ARCH, build_class_renderer, faust_to_cpp

MAX_BLOCK = 64  # samples per kernel block at most (the shortest line bounds it too)


class NativeUnsupported(AdacError):
    """The IR has no loop the kernel realises (the message names the loops and why)."""


# ------------------------------------------------------------------------------------------------ the plan

def kernel_refusal(node: dict) -> str | None:
    """Why the recursion ``node`` is not a kernel loop, or None."""
    if not is_delay_bank(node["feedforward"]):
        return f"{node.get('path') or '<root>'}: the feedforward path is not a bank of integer delay lines"
    return FEEDBACK(node["feedback"])


def _contains_loop(node: dict) -> bool:
    if node["kind"] == "recursion":
        return True
    return any(_contains_loop(c) for c in node.get("children", ()))


@dataclass
class KernelLoop:
    """One FDN loop the kernel runs: ``lines`` delay lengths (samples), ``feedback`` the IR of ``G``."""

    node: dict
    lines: list[int]
    feedback: dict

    @property
    def n(self) -> int:
        return len(self.lines)


# ------------------------------------------------------------------------------ the FAUST program around

@dataclass
class _Lifted:
    """A FAUST expression with ``extra_in`` channels after its inputs and ``extra_out`` after its outputs
    (the kernel loops' ends inside it, in the order of :attr:`_Cut.loops`)."""

    expr: str
    n_in: int
    n_out: int
    extra_in: int = 0
    extra_out: int = 0


def _bus(n: int) -> str | None:
    return f"si.bus({n})" if n else None


def _par(*parts: str | None) -> str:
    parts = [p for p in parts if p]
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def _permute(n: int, source: list[int]) -> str | None:
    return route(n, np.asarray(source)) if n else None


def _seq(*parts: str | None) -> str:
    return "(" + " : ".join(p for p in parts if p) + ")"


class _Cut:
    """Emits the graph as one FAUST program with each kernel loop cut open (see the module docstring)."""

    def __init__(self, ctx: EmitContext):
        self.ctx = ctx
        self.loops: list[KernelLoop] = []
        self.refusals: list[str] = []

    def lift(self, node: dict) -> _Lifted:
        kind = node["kind"]
        if kind == "recursion":
            refusal = kernel_refusal(node)
            if refusal is None and not self.ctx.loop_depth:
                return self._loop(node)
            self.refusals.append(refusal or f"{node.get('path') or '<root>'}: a loop inside another loop")
        elif kind in ("series", "parallel") and _contains_loop(node):
            return self._series(node) if kind == "series" else self._parallel(node)
        return _Lifted(emit_node(node, self.ctx), node["in"], node["out"])

    def _loop(self, node: dict) -> _Lifted:
        lines = [int(d) for d in np.asarray(node["feedforward"]["samples"], dtype=float)]
        self.loops.append(KernelLoop(node, lines, node["feedback"]))
        n, decay = len(lines), self.ctx.loop_decay
        u, r = [f"u{i}" for i in range(n)], [f"r{i}" for i in range(n)]
        # the loop's output: each line decayed as FAUST's own loop decays it (gamma^d for the whole line)
        y = [f"{r[i]} * {decay}({number(float(d))})" if decay else r[i] for i, d in enumerate(lines)]
        body = y + u + (y if decay else [])  # outputs: y (on into the graph); u, q (to the kernel)
        expr = f"(\\({', '.join(u + r)}).({', '.join(body)}))"
        return _Lifted(self.ctx.define(node, expr), n, n, n, len(body) - n)

    def _series(self, node: dict) -> _Lifted:
        cur = self.lift(node["children"][0])
        for child in node["children"][1:]:
            nxt = self.lift(child)
            if not (cur.extra_in or cur.extra_out or nxt.extra_in or nxt.extra_out):
                cur = _Lifted(_seq(cur.expr, nxt.expr), cur.n_in, nxt.n_out)
                continue
            b, u1, r2, c, u2 = cur.n_out, cur.extra_out, nxt.extra_in, nxt.n_out, nxt.extra_out
            # (b, U1, R2) -> (b, R2, U1); (c, U2, U1) -> (c, U1, U2)
            first = _permute(b + u1 + r2, [*range(b), *range(b + u1, b + u1 + r2), *range(b, b + u1)])
            second = _permute(c + u2 + u1, [*range(c), *range(c + u2, c + u2 + u1), *range(c, c + u2)])
            expr = _seq(_par(cur.expr, _bus(r2)), first, _par(nxt.expr, _bus(u1)), second)
            cur = _Lifted(expr, cur.n_in, c, cur.extra_in + r2, u1 + u2)
        return _Lifted(self.ctx.define(node, cur.expr), cur.n_in, cur.n_out, cur.extra_in, cur.extra_out)

    def _parallel(self, node: dict) -> _Lifted:
        a, b = (self.lift(c) for c in node["children"])
        n = node["in"]
        # (x, Ra, Rb) -> (x, x, Ra, Rb) -> (x, Ra, x, Rb) -> a, b -> (ya, Ua, yb, Ub) -> (ya, yb, Ua, Ub)
        split = _par(f"(si.bus({n}) <: si.bus({n}), si.bus({n}))", _bus(a.extra_in), _bus(b.extra_in))
        feed = _permute(2 * n + a.extra_in + b.extra_in,
                        [*range(n), *range(2 * n, 2 * n + a.extra_in), *range(n, 2 * n),
                         *range(2 * n + a.extra_in, 2 * n + a.extra_in + b.extra_in)])
        ya, ua, yb = a.n_out, a.extra_out, b.n_out
        total = ya + ua + yb + b.extra_out
        gather = _permute(total, [*range(ya), *range(ya + ua, ya + ua + yb), *range(ya, ya + ua),
                                  *range(ya + ua + yb, total)])
        out = node["out"]
        merge = _par(f"(si.bus({ya + yb}) :> si.bus({out}))" if node["sum_output"] else None,
                     None if node["sum_output"] else _bus(ya + yb), _bus(ua + b.extra_out))
        expr = _seq(split, feed, _par(a.expr, b.expr), gather, merge)
        return _Lifted(self.ctx.define(node, expr), n, out, a.extra_in + b.extra_in, ua + b.extra_out)


# ------------------------------------------------------------------------------------------- C++ kernel

def _literals(values, ctype: str) -> str:
    """A C++ initialiser list; floats as the shortest text that round-trips the float64 value."""
    text = (str(int(v)) if ctype == "int" else repr(float(v)) for v in np.ravel(values))
    return "{" + ", ".join(text) + "}"


def _stages_of(node: dict) -> list[dict]:
    """A feedback path's nodes in order (series flattened)."""
    if node["kind"] == "series":
        return [n for c in node["children"] for n in _stages_of(c)]
    return [node]


class _Stages:
    """C++ of a feedback path over a block of ``n`` samples, in two buffers ``fX`` / ``fY`` of either layout:
    lines ``b[i * kBlock + t]`` (matrix products, Hadamard and Householder stages, vectorised over time) or
    frames ``b[t * width + i]`` (per-line sections, vectorised across lines). The data are static members."""

    def __init__(self, prefix: str, n: int):
        self.prefix = prefix
        self.current, self.layout, self.width = "fX", "lines", n
        self.members: list[str] = []
        self.resets: list[str] = []
        self.code: list[str] = []
        self.count = 0

    @property
    def other(self) -> str:
        return "fY" if self.current == "fX" else "fX"

    def name(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}_{what}{self.count}"

    def table(self, what: str, values, ctype: str = "adac_real") -> str:
        name = self.name(what)
        self.members.append(f"static constexpr {ctype} {name}[{np.size(values)}] = {_literals(values, ctype)};")
        return name

    def state(self, what: str, size: int) -> str:
        name = self.name(what)
        self.members.append(f"adac_real {name}[{size}];")
        self.resets.append(f"std::fill_n({name}, {size}, adac_real(0));")
        return name

    def relayout(self, layout: str) -> None:
        if self.layout != layout:
            helper = "adac_to_lines" if layout == "lines" else "adac_to_frames"
            self.code.append(f"{helper}<{self.width}>({self.current}, {self.other}, n);")
            self.current, self.layout = self.other, layout

    def add(self, nodes: list[dict]) -> None:
        """The stages of ``nodes`` (a feedback path's, :func:`_stages_of`), ending on lines."""
        for k, node in enumerate(nodes):
            following = nodes[k + 1]["kind"] if k + 1 < len(nodes) else None
            FEEDBACK(node, self, "frames" if following == "sos" else "lines")
        self.relayout("lines")

    def gain(self, node, layout_after: str):
        n_in, n_out = node["in"], node["out"]
        b = self.current
        if node["diagonal"]:
            g = self.table("gain", node["gains"])
            loop = (f"for (int i = 0; i < {n_in}; ++i) for (int t = 0; t < n; ++t) {b}[i * kBlock + t] *= {g}[i];"
                    if self.layout == "lines" else
                    f"for (int t = 0; t < n; ++t) for (int i = 0; i < {n_in}; ++i) {b}[t * {n_in} + i] *= {g}[i];")
            self.code.append(loop)
            return
        matrix = np.asarray(node["matrix"], dtype=float)
        form = hadamard_form(matrix)
        if form is not None:
            self.relayout("lines")
            tables = [self.table("col", form.col), self.table("sigma", form.sigma, "int"),
                      self.table("pi", form.pi, "int"), self.table("row", form.row)]
            self.code.append(f"adac_hadamard<{n_in}>({self.current}, {self.other}, n, {', '.join(tables)});")
            return
        # one matrix product over the block (Eigen's blocked GEMM); either layout in and out (its packing
        # reads a transposed operand at no cost)
        source = (f"adac_L({b}, {n_in}, n)" if self.layout == "lines" else f"adac_F({b}, n, {n_in})")
        if layout_after == "lines":
            m = self.table("matrix", matrix)
            source = source if self.layout == "lines" else source + ".transpose()"
            self.code.append(f"adac_L({self.other}, {n_out}, n).noalias() = adac_M({m}, {n_out}, {n_in}) * {source};")
        else:
            mt = self.table("matrix_t", matrix.T)
            source = source if self.layout == "frames" else source + ".transpose()"
            self.code.append(f"adac_F({self.other}, n, {n_out}).noalias() = {source} * adac_M({mt}, {n_in}, {n_out});")
        self.current, self.layout, self.width = self.other, layout_after, n_out

    def householder(self, node, layout_after: str):
        self.relayout("lines")
        u, u2 = self.table("u", node["u"]), self.table("u2", 2 * np.asarray(node["u"], dtype=float))
        self.code.append(f"adac_householder<{node['in']}>({self.current}, fS, n, {u}, {u2});")

    def sos(self, node, layout_after: str):
        sections = np.asarray(node["sections"], dtype=float)  # (K, 6, N)
        n = node["in"]
        self.relayout("frames")
        for k in range(sections.shape[0]):
            per_line = [sections[k, :, i] for i in range(n)]
            svf = [svf_parameters(s) if not (s[4] == s[5] == 0) else None for s in per_line]
            if all(p is not None for p in svf):
                tables = [self.table(w, [p[j] for p in svf]) for j, w in enumerate(("a1_", "a2_", "g", "c0_", "c1_", "c2_"))]
                states = [self.state(w, n) for w in ("ic1_", "ic2_")]
                self.code.append(f"adac_svf<{n}>({self.current}, n, {', '.join(tables + states)});")
                continue
            # direct form I (sections no SVF represents, and FIR sections, as FAUST writes them)
            tables = [self.table(w, [sign * s[j] for s in per_line])
                      for j, w, sign in ((0, "b0_", 1), (1, "b1_", 1), (2, "b2_", 1), (4, "na1_", -1), (5, "na2_", -1))]
            states = [self.state(w, n) for w in ("x1_", "x2_", "y1_", "y2_")]
            self.code.append(f"adac_df1<{n}>({self.current}, n, {', '.join(tables + states)});")


_CLASS = """\
// The kernel of {name}: {loops}; blocks of up to {block} samples (adac.backends.native).
#undef FAUSTCLASS
#define FAUSTCLASS {cls}
#include <Eigen/Core>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#include <algorithm>
#include <type_traits>
#include <vector>

class {cls} : public dsp {{
  private:
    using adac_real = {real};
    using adac_map = Eigen::Map<Eigen::Matrix<adac_real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
    using adac_const_map = Eigen::Map<const Eigen::Matrix<adac_real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
    static constexpr int kBlock = {block};
    using adac_lines_map = Eigen::Map<Eigen::Matrix<adac_real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                                      Eigen::OuterStride<>>;
    // a block as lines (rows of kBlock samples) or frames (rows of one sample per line), and a matrix
    static adac_lines_map adac_L(adac_real* p, int rows, int n) {{ return adac_lines_map(p, rows, n, Eigen::OuterStride<>(kBlock)); }}
    static adac_map adac_F(adac_real* p, int n, int cols) {{ return adac_map(p, n, cols); }}
    static adac_const_map adac_M(const adac_real* p, int rows, int cols) {{ return adac_const_map(p, rows, cols); }}
    // d[b * ds + a] = s[a * ss + b] for a, b < 4 (SSE shuffles for float)
#if defined(__SSE__)
    static void adac_tile(const float* s, int ss, float* d, int ds) {{
        __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + ss), r2 = _mm_loadu_ps(s + 2 * ss), r3 = _mm_loadu_ps(s + 3 * ss);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(d, r0); _mm_storeu_ps(d + ds, r1); _mm_storeu_ps(d + 2 * ds, r2); _mm_storeu_ps(d + 3 * ds, r3);
    }}
#endif
    template <typename T> static void adac_tile(const T* s, int ss, T* d, int ds) {{
        for (int a = 0; a < 4; ++a) for (int b = 0; b < 4; ++b) d[b * ds + a] = s[a * ss + b];
    }}
    // lines l[i * kBlock + t] <-> frames f[t * N + i], by 4 x 4 tiles
    template <int N> static void adac_to_frames(const adac_real* RESTRICT l, adac_real* RESTRICT f, int n) {{
        int t0 = 0;
        if (N % 4 == 0)
            for (; t0 + 4 <= n; t0 += 4) for (int i = 0; i < N; i += 4) adac_tile(l + i * kBlock + t0, kBlock, f + t0 * N + i, N);
        for (int t = t0; t < n; ++t) for (int i = 0; i < N; ++i) f[t * N + i] = l[i * kBlock + t];
    }}
    template <int N> static void adac_to_lines(const adac_real* RESTRICT f, adac_real* RESTRICT l, int n) {{
        int t0 = 0;
        if (N % 4 == 0)
            for (; t0 + 4 <= n; t0 += 4) for (int i = 0; i < N; i += 4) adac_tile(f + t0 * N + i, N, l + i * kBlock + t0, kBlock);
        for (int t = t0; t < n; ++t) for (int i = 0; i < N; ++i) l[i * kBlock + t] = f[t * N + i];
    }}
    // y = diag(row) P_pi H P_sigma diag(col) x on lines (H Sylvester's, unnormalised: N log2 N additions); s scratch
    template <int N> static void adac_hadamard(adac_real* RESTRICT x, adac_real* RESTRICT s, int n, const adac_real* col,
                                               const int* sigma, const int* pi, const adac_real* row) {{
        for (int b = 0; b < N; ++b) for (int t = 0; t < n; ++t) s[sigma[b] * kBlock + t] = col[b] * x[b * kBlock + t];
        for (int h = 1; h < N; h *= 2)
            for (int i = 0; i < N; i += 2 * h)
                for (int j = i; j < i + h; ++j) {{
                    adac_real* RESTRICT a = s + j * kBlock;
                    adac_real* RESTRICT c = s + (j + h) * kBlock;
                    for (int t = 0; t < n; ++t) {{ const adac_real p = a[t], d = c[t]; a[t] = p + d; c[t] = p - d; }}
                }}
        for (int a = 0; a < N; ++a) for (int t = 0; t < n; ++t) x[a * kBlock + t] = row[a] * s[pi[a] * kBlock + t];
    }}
    // x - 2 u (u . x) on lines; s: kBlock scratch
    template <int N> static void adac_householder(adac_real* RESTRICT x, adac_real* RESTRICT s, int n, const adac_real* u,
                                                  const adac_real* u2) {{
        for (int t = 0; t < n; ++t) s[t] = 0;
        for (int i = 0; i < N; ++i) for (int t = 0; t < n; ++t) s[t] += u[i] * x[i * kBlock + t];
        for (int i = 0; i < N; ++i) for (int t = 0; t < n; ++t) x[i * kBlock + t] -= u2[i] * s[t];
    }}
    // n samples of a ring buffer (size mask + 1) read from position at; n samples w + u written at position at
    static void adac_ring_read(const adac_real* RESTRICT line, unsigned mask, unsigned at, FAUSTFLOAT* RESTRICT out,
                               int n) {{
        const adac_real* RESTRICT start = line + (at & mask);
        const int first = std::min(n, int(mask + 1 - (at & mask)));
        for (int t = 0; t < first; ++t) out[t] = FAUSTFLOAT(start[t]);
        for (int t = first; t < n; ++t) out[t] = FAUSTFLOAT(line[t - first]);
    }}
    static void adac_ring_write(adac_real* RESTRICT line, unsigned mask, unsigned at, const adac_real* RESTRICT w,
                                const FAUSTFLOAT* RESTRICT u, int n) {{
        adac_real* RESTRICT start = line + (at & mask);
        const int first = std::min(n, int(mask + 1 - (at & mask)));
        for (int t = 0; t < first; ++t) start[t] = w[t] + adac_real(u[t]);
        for (int t = first; t < n; ++t) line[t - first] = w[t] + adac_real(u[t]);
    }}
    // a loop's q[i][t] (the FAUST program's outputs) as lines of the kernel's type
    template <int N> static void adac_copy_lines(const FAUSTFLOAT (*q)[kBlock], adac_real* RESTRICT l, int n) {{
        for (int i = 0; i < N; ++i) for (int t = 0; t < n; ++t) l[i * kBlock + t] = adac_real(q[i][t]);
    }}
    // one section per line over n frames: topology-preserving SVF (as adac_svf) and direct form I (as adac_biquad)
    template <int N> static void adac_svf(adac_real* RESTRICT x, int n, const adac_real* RESTRICT a1,
                                          const adac_real* RESTRICT a2, const adac_real* RESTRICT g,
                                          const adac_real* RESTRICT c0, const adac_real* RESTRICT c1,
                                          const adac_real* RESTRICT c2, adac_real* RESTRICT ic1, adac_real* RESTRICT ic2) {{
        adac_real s1[N], s2[N];  // the states in locals over the block: registers where N is small
        std::copy(ic1, ic1 + N, s1);
        std::copy(ic2, ic2 + N, s2);
        for (int t = 0; t < n; ++t) {{
            adac_real* RESTRICT f = x + t * N;
#pragma GCC unroll 1
            for (int i = 0; i < N; ++i) {{  // kept a loop: g++ vectorises it, not its unrolled copy (N = 4)
                const adac_real v0 = f[i], v3 = v0 - s2[i], v1 = a1[i] * s1[i] + a2[i] * v3, v2 = s2[i] + g[i] * v1;
                s1[i] = 2 * v1 - s1[i];
                s2[i] = 2 * v2 - s2[i];
                f[i] = c0[i] * v0 + c1[i] * v1 + c2[i] * v2;
            }}
        }}
        std::copy(s1, s1 + N, ic1);
        std::copy(s2, s2 + N, ic2);
    }}
    template <int N> static void adac_df1(adac_real* RESTRICT x, int n, const adac_real* RESTRICT b0,
                                          const adac_real* RESTRICT b1, const adac_real* RESTRICT b2,
                                          const adac_real* RESTRICT na1, const adac_real* RESTRICT na2,
                                          adac_real* RESTRICT x1, adac_real* RESTRICT x2, adac_real* RESTRICT y1,
                                          adac_real* RESTRICT y2) {{
        for (int t = 0; t < n; ++t) {{
            adac_real* RESTRICT f = x + t * N;
#pragma GCC unroll 1
            for (int i = 0; i < N; ++i) {{  // kept a loop: g++ vectorises it, not its unrolled copy (N = 4)
                const adac_real v = f[i], o = (b0[i] * v + b1[i] * x1[i] + b2[i] * x2[i]) + (na1[i] * y1[i] + na2[i] * y2[i]);
                x2[i] = x1[i]; x1[i] = v; y2[i] = y1[i]; y1[i] = o; f[i] = o;
            }}
        }}
    }}
    {graph} fGraph;
    unsigned fWrite = 0;
    FAUSTFLOAT* fIns[{ins}];
    FAUSTFLOAT* fOuts[{outs}];
    adac_real fX[kBlock * {width}], fY[kBlock * {width}], fS[kBlock];  // a loop's block in either layout; scratch
{members}

  public:
    {cls}() {{
{construct}
    }}
    {cls}(const {cls}&) = delete;
    {cls}& operator=(const {cls}&) = delete;
    void metadata(Meta* m) override {{ fGraph.metadata(m); m->declare("adac_backend", "native"); }}
    int getNumInputs() override {{ return {n_in}; }}
    int getNumOutputs() override {{ return {n_out}; }}
    static void classInit(int sample_rate) {{ {graph}::classInit(sample_rate); }}
    void instanceConstants(int sample_rate) override {{ fGraph.instanceConstants(sample_rate); }}
    void instanceResetUserInterface() override {{ fGraph.instanceResetUserInterface(); }}
    void instanceClear() override {{
        fGraph.instanceClear();
        fWrite = 0;
{clear}
    }}
    void init(int sample_rate) override {{ classInit(sample_rate); instanceInit(sample_rate); }}
    void instanceInit(int sample_rate) override {{
        instanceConstants(sample_rate);
        instanceResetUserInterface();
        instanceClear();
    }}
    {cls}* clone() override {{ return new {cls}(); }}
    int getSampleRate() override {{ return fGraph.getSampleRate(); }}
    void buildUserInterface(UI* ui_interface) override {{ fGraph.buildUserInterface(ui_interface); }}
    void compute(int count, FAUSTFLOAT** inputs, FAUSTFLOAT** outputs) override {{
        for (int done = 0; done < count;) {{
            const int n = std::min(kBlock, count - done);
            // the lines' outputs over the block: all written at least one block ago
{read}
            for (int c = 0; c < {n_in}; ++c) fIns[c] = inputs[c] + done;
            for (int c = 0; c < {n_out}; ++c) fOuts[c] = outputs[c] + done;
            fGraph.compute(n, fIns, fOuts);
            // each loop's feedback over the block, then w = u + G q into its lines
{feedback}
            fWrite += unsigned(n);
            done += n;
        }}
    }}
}};
"""


# The kernel's part per IR kind in a feedback path: ``rule(node)`` says why the kernel cannot run the node
# (None: it can); ``rule(node, stages, layout_after)`` adds its C++ to ``stages`` (:class:`_Stages`), leaving
# the block in ``layout_after`` where the node's stage can choose.
FEEDBACK = KindTable("native feedback stage")


@FEEDBACK.register("series")
def _feedback_series(node, stages=None, layout_after=None):
    assert stages is None, "a series is flattened before its stages are emitted (_stages_of)"
    return next((r for r in map(FEEDBACK, node["children"]) if r), None)


@FEEDBACK.register("gain", "householder", "sos")
def _feedback_stage(node, stages=None, layout_after=None):
    if node["kind"] == "sos" and not node["diagonal"]:
        return f"{node.get('path') or '<root>'}: a non-diagonal sos node in the feedback path"
    if stages is not None:
        getattr(stages, node["kind"])(node, layout_after)
    return None


@FEEDBACK.register("delay", "fir", "gain_delay", "parallel", "recursion")
def _feedback_refused(node, stages=None, layout_after=None):
    return f"{node.get('path') or '<root>'}: a {node['kind']} node in the feedback path (the kernel runs gains, " \
           "Householder reflections and per-line sections there)"


def _loop_code(k: int, loop: KernelLoop, has_q: bool, in_base: int, out_base: int) -> dict[str, list[str]]:
    """C++ pieces of loop ``k``: members, constructor, clear, block read, feedback; its ``r`` channels are the
    graph's inputs from ``in_base``, its ``u`` (then ``q``) channels the graph's outputs from ``out_base``."""
    n, p = loop.n, f"fL{k}"
    sizes = [1 << int(np.ceil(np.log2(d + MAX_BLOCK + 1))) for d in loop.lines]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    q = f"{p}_q" if has_q else f"{p}_r"
    stages = _Stages(p, n)
    stages.add(_stages_of(fold_gains(loop.feedback)))  # neighbouring gains as one matrix (FAUST folds them too)
    members = [
        f"    // loop {k}: {loop.node.get('path') or '<root>'}, {n} lines",
        f"    static constexpr int {p}_len[{n}] = {{{', '.join(map(str, loop.lines))}}};",
        f"    static constexpr unsigned {p}_mask[{n}] = {{{', '.join(str(s - 1) for s in sizes)}}};",
        f"    static constexpr int {p}_off[{n}] = {{{', '.join(map(str, offsets))}}};",
        f"    std::vector<adac_real> {p}_lines = std::vector<adac_real>({int(sum(sizes))});",
        f"    FAUSTFLOAT {p}_r[{n}][kBlock], {p}_u[{n}][kBlock]" + (f", {p}_q[{n}][kBlock];" if has_q else ";"),
        *("    " + m for m in stages.members),
    ]
    construct = [f"        for (int i = 0; i < {n}; ++i) {{ fIns[{in_base} + i] = {p}_r[i]; fOuts[{out_base} + i] = {p}_u[i];"
                 + (f" fOuts[{out_base + n} + i] = {p}_q[i];" if has_q else "") + " }"]
    clear = [f"        std::fill({p}_lines.begin(), {p}_lines.end(), adac_real(0));", *("        " + r for r in stages.resets)]
    read = [f"            for (int i = 0; i < {n}; ++i) adac_ring_read({p}_lines.data() + {p}_off[i], {p}_mask[i],"
            f" fWrite - unsigned({p}_len[i]), {p}_r[i], n);"]
    feedback = [
        "            {",
        f"                adac_copy_lines<{n}>({q}, fX, n);",
        *("                " + c for c in stages.code),
        f"                for (int i = 0; i < {n}; ++i) adac_ring_write({p}_lines.data() + {p}_off[i], {p}_mask[i],"
        f" fWrite, {stages.current} + i * kBlock, {p}_u[i], n);",
        "            }",
    ]
    return {"members": members, "construct": construct, "clear": clear, "read": read, "feedback": feedback}


def _widths(node: dict) -> list[int]:
    return [node["in"], node["out"], *(w for c in node.get("children", ()) for w in _widths(c))]


def json_to_native(ir: dict, controls: dict | None = None, *, class_name: str = "mydsp", double: bool = False,
                   faust_flags=(), fractional_order: int = DEFAULT_ORDER, delay_limits: dict | None = None,
                   validate: bool = True) -> str:
    """C++ of ``class <class_name> : public dsp``: the IR's FDN loops as a block kernel, the rest as FAUST code.

    A drop-in for the class ``faust -lang cpp -cn <class_name>`` emits from
    :func:`adac.backends.faust.json_to_faust` ``(ir, controls)``: the same inputs and outputs, the same UI
    (the controls are the FAUST program's) and metadata (plus ``adac_backend: native``); ``compute`` takes any
    count. Like FAUST's class text it needs ``faust/gui/meta.h``, ``faust/gui/UI.h`` and ``faust/dsp/dsp.h``
    included before it, and Eigen's headers on the include path (:func:`adac.common.toolchain.eigen_include`).

    Args:
        ir: IR document; ``controls``, ``fractional_order``, ``delay_limits``, ``validate``: as for json_to_faust.
        class_name: the C++ class (the FAUST program around the kernel is ``<class_name>_graph``).
        double: the kernel and the FAUST program in double precision (``faust -double``).
        faust_flags: extra ``faust`` options for the program around the kernel (e.g. ``("-mcd", "0")``).

    Raises:
        NativeUnsupported: no loop of the IR is a kernel loop (see the module docstring); the message lists why.
    """
    check_ir(ir, validate=validate, delay_limits=delay_limits, fractional_order=fractional_order)
    ctx = EmitContext(fractional_order=fractional_order)
    wrap = prepare_controls(ir, controls, ctx) if controls else None
    cut = _Cut(ctx)
    model = cut.lift(fold_gains(ir["graph"]))
    if not cut.loops:
        why = "; ".join(cut.refusals) or "the graph has no loop"
        raise NativeUnsupported(f"IR of {ir.get('name', '?')!r}: no loop the native kernel realises ({why})")
    process = wrap(model.expr, model.extra_in, model.extra_out) if wrap else model.expr
    graph = f"{class_name}_graph"
    program = program_text(ir, ctx.definitions, process)
    graph_cpp = faust_to_cpp(program, double=double, extra_flags=tuple(faust_flags), class_name=graph)
    has_q = ctx.loop_decay is not None
    n_in, n_out = ir["input_channels"], ir["output_channels"]
    parts: dict[str, list[str]] = {k: [] for k in ("members", "construct", "clear", "read", "feedback")}
    in_base, out_base = n_in, n_out
    for k, loop in enumerate(cut.loops):
        for key, lines in _loop_code(k, loop, has_q, in_base, out_base).items():
            parts[key] += lines
        in_base += loop.n
        out_base += loop.n * (2 if has_q else 1)
    block = int(min(MAX_BLOCK, *(min(loop.lines) for loop in cut.loops)))
    kernel = _CLASS.format(
        name=comment(ir["name"]), cls=class_name, graph=graph,
        real="double" if double else "float", block=block, ins=in_base, outs=out_base,
        width=max(max(_widths(loop.feedback)) for loop in cut.loops), n_in=n_in, n_out=n_out,
        loops=", ".join(f"{loop.n} lines" for loop in cut.loops),
        **{k: "\n".join(v) for k, v in parts.items()})
    return graph_cpp + "\n" + kernel


def native_to_cpp(ir: dict, controls: dict | None = None, *, architecture: Path | None = None, **options) -> str:
    """:func:`json_to_native` inside a FAUST architecture file (its ``<<includeIntrinsic>>`` and
    ``<<includeclass>>`` markers replaced), like :func:`adac.backends.faust.render.faust_to_cpp` with one."""
    cls = json_to_native(ir, controls, **options)
    if architecture is None:
        return cls
    text = Path(architecture).read_text()
    return text.replace("<<includeIntrinsic>>", "").replace("<<includeclass>>", cls)


def build_native_renderer(ir: dict, controls: dict | None = None, **options) -> Path:
    """A renderer of the native class (cached by its C++ text; see
    :func:`adac.backends.faust.render.build_class_renderer`), for :func:`adac.backends.faust.render.impulse_responses`
    and :func:`~adac.backends.faust.render.process_signal`; ``options``: :func:`json_to_native`'s."""
    cpp = native_to_cpp(ir, controls, architecture=RENDER_ARCH, **options)
    return build_class_renderer(cpp, lambda: cpp, include_dirs=(toolchain.eigen_include(),))
