"""The runtime's loader as an attack surface (issue 22): a document on disk or at a watched path either loads or is
refused with a message naming where (``adac: error: ...``, exit status 2), and nothing it holds crashes the runtime.

- A mutation fuzz driver (``runtime/tests/fuzz_load.cpp``) built with AddressSanitizer + UndefinedBehaviorSanitizer
  (aborting on the first report) mutates seed documents (a zoo FDN with every macro-control, a model with every
  node kind, nested loops) thousands of times; what loads plays in float and double.
- Hand-made bad documents through the runtime's render driver (the Release build users run, and the sanitized one):
  one printable line naming the node or the field; numbers beyond the float range the float player computes in,
  and documents that would make a player allocate without bound (signal buffers, pre-delay lines), are refused.
- What the runtime does not realise (delay-free loops, controls the model cannot have) is refused naming where.

Replay a fuzz failure: ``adac-runtime-fuzz-load --seed 22 --only I SEEDS...`` (``--dump I`` writes the mutant).
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system

from adac.backends.runtime import build_runtime, runtime_document
from adac.frontend.flamo import flamo_to_json
from flamo_models import CPU, FS, _sos, fdn, shell

FUZZ = "adac-runtime-fuzz-load"
CHECKED_RENDER = "adac-runtime-render-checked"
MUTANTS = 3000  # about 12 s under the sanitizers on this 2-core machine (when it is not busy)
CHECKED_ENV = {**os.environ, "ASAN_OPTIONS": "abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
FUZZ_ENV = {**os.environ, "ASAN_OPTIONS": "abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
SANITIZER_REPORTS = ("runtime error", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def _strip(node):
    """The document without FLAMO's provenance (the loader ignores it; mutations of it would be wasted)."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "flamo"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _document(model, name, controls):
    return _strip(runtime_document(flamo_to_json(model, FS, name=name), controls=controls))


def _kinds(node, found=None):
    found = set() if found is None else found
    if isinstance(node, dict):
        if "kind" in node:
            found.add(node["kind"])
        for value in node.values():
            _kinds(value, found)
    elif isinstance(node, list):
        for value in node:
            _kinds(value, found)
    return found


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """{name: (path, document)}: the zoo FDN with rt60, dry/wet and pre-delay; a model with every node kind (a
    fractional delay, a gain-delay, an FIR, SOS, Householder, gains, a loop); a loop inside a loop."""
    torch.manual_seed(3)
    fractional = dsp.parallelDelay(size=(2,), max_len=40, isint=False, fs=FS, **CPU)
    with torch.no_grad():
        fractional.param[:] = torch.tensor([7.3, 12.6]) / FS * fractional.unit
    loop = system.Recursion(dsp.parallelDelay(size=(2,), max_len=60, isint=True, fs=FS, **CPU),
                            system.Series(dsp.HouseholderMatrix(size=(2, 2), **CPU), dsp.parallelGain(size=(2,), **CPU)))
    with torch.no_grad():
        loop.feedback[1].param[:] = 0.5
    chain = system.Series(dsp.Gain(size=(2, 1), **CPU), fractional, dsp.GainDelay(size=(2, 2), max_len=30, isint=True, fs=FS, **CPU),
                          dsp.Filter(size=(8, 2, 2), **CPU), _sos(dsp.SOSFilter(size=(2, 2), n_sections=2, fs=FS, **CPU)),
                          dsp.HouseholderMatrix(size=(2, 2), **CPU), dsp.parallelGain(size=(2,), **CPU), loop)
    every_kind = shell(system.Parallel(chain, dsp.Gain(size=(2, 1), **CPU), sum_output=True))

    inner = system.Recursion(dsp.parallelDelay(size=(2,), max_len=30, isint=True, fs=FS, **CPU), dsp.parallelGain(size=(2,), **CPU))
    outer = system.Recursion(system.Series(inner, dsp.parallelDelay(size=(2,), max_len=50, isint=True, fs=FS, **CPU)),
                             system.Series(dsp.Matrix(size=(2, 2), matrix_type="orthogonal", **CPU), dsp.parallelGain(size=(2,), **CPU)))
    with torch.no_grad():
        inner.feedback.param[:] = 0.4
        outer.feedback[1].param[:] = 0.5
    nested = shell(system.Series(dsp.Gain(size=(2, 1), **CPU), outer, dsp.Gain(size=(1, 2), **CPU)))

    documents = {
        "fdn": _document(fdn(), "fdn", {"rt60": True, "dry_wet": True, "pre_delay": True}),
        "kinds": _document(every_kind, "kinds", {"rt60": True, "dry_wet": True}),
        "nested": _document(nested, "nested", {"rt60": True, "pre_delay": True}),
    }
    assert _kinds(documents["kinds"]["graph"]) == {"series", "parallel", "recursion", "delay", "gain_delay", "gain",
                                                   "householder", "fir", "sos"}
    folder = tmp_path_factory.mktemp("seeds")
    out = {}
    for name, document in documents.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(document))
        out[name] = (path, document)
    return out


@pytest.fixture(scope="module")
def checks():
    """The sanitized build: the fuzz driver and the render driver on the runtime compiled with ASan + UBSan."""
    return build_runtime((FUZZ, CHECKED_RENDER), build_type="Debug", options=("-DADAC_RUNTIME_CHECKS=ON",))


@pytest.fixture(scope="module")
def renderers(checks):
    """The render drivers a refusal is checked with: the Release one (as shipped) and the sanitized one."""
    return {"release": (build_runtime() / "adac-runtime-render", os.environ),
            "checked": (checks / CHECKED_RENDER, CHECKED_ENV)}


# ---------------------------------------------------------------------------------------------------------------
# the fuzz driver


def test_the_fuzz_driver_is_built_with_the_sanitizers(checks, seeds):
    proc = subprocess.run([str(checks / FUZZ), "--runs", "0", *(str(p) for p, _ in seeds.values())],
                          capture_output=True, text=True, env={**FUZZ_ENV, "ASAN_OPTIONS": "verbosity=1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "AddressSanitizer" in proc.stderr  # ASan's start-up report: the instrumented runtime is the one running
    assert proc.stdout.strip().endswith("mutants 0 loaded 0 refused 0 played 0 nonfinite 0 failures 0")


def test_thousands_of_mutated_documents_load_or_are_refused_and_play_without_a_sanitizer_report(checks, seeds, tmp_path):
    crash = tmp_path / "crash.json"
    proc = subprocess.run([str(checks / FUZZ), "--runs", str(MUTANTS), "--seed", "22", "--crash", str(crash), "--reasons",
                           *(str(p) for p, _ in seeds.values())], capture_output=True, text=True, env=FUZZ_ENV, timeout=600)
    report = proc.stdout[-3000:] + proc.stderr[-6000:] + (f"\nthe mutant: {crash}" if crash.exists() else "")
    assert proc.returncode == 0, report
    assert not any(s in proc.stderr for s in SANITIZER_REPORTS), report
    assert "FAILURE" not in proc.stderr, report
    summary = re.search(r"mutants (\d+) loaded (\d+) refused (\d+) played (\d+) nonfinite (\d+) failures (\d+)\s*$", proc.stdout)
    assert summary, proc.stdout[-2000:]
    mutants, loaded, refused, played, nonfinite, failures = map(int, summary.groups())
    assert mutants == MUTANTS and loaded + refused == mutants and failures == 0
    # not vacuous: most mutants are refused, and a real share load and play (in float and double)
    assert refused >= 0.5 * mutants and loaded >= 0.05 * mutants and played == loaded, summary.group(0)
    # a mutated model may be unstable, but most of what loads plays finite
    assert nonfinite <= 0.5 * loaded, summary.group(0)
    # the refusals come from every layer: the JSON parser, the document's fields, the nodes' fields, the structure
    reasons = dict((m.group(2), int(m.group(1))) for m in re.finditer(r"^ *(\d+)  (.+)$", proc.stdout, re.M))
    assert sum(reasons.values()) == refused and len(reasons) >= 40, reasons
    for layer in ("IR: not a JSON document", "IR: the document is nested deeper", "IR: expected a JSON object",
                  "must be an integer in", "realises no IR node kind", "recursion: delay-free loop", "missing field",
                  "expected a number", "takes # channels, its predecessor gives", "realisation.fractional_order",
                  "control "):
        assert any(layer in reason for reason in reasons), (layer, reasons)


def test_the_fuzz_driver_replays_one_mutant_exactly(checks, seeds):
    paths = [str(p) for p, _ in seeds.values()]
    dumps = [subprocess.run([str(checks / FUZZ), "--seed", "22", "--dump", "17", *paths], capture_output=True, env=FUZZ_ENV,
                            timeout=120).stdout for _ in range(2)]
    other = subprocess.run([str(checks / FUZZ), "--seed", "23", "--dump", "17", *paths], capture_output=True, env=FUZZ_ENV,
                           timeout=120).stdout
    assert dumps[0] and dumps[0] == dumps[1] and other != dumps[0]


# ---------------------------------------------------------------------------------------------------------------
# bad documents through the render driver


def _render(renderer, env, path, n=256):
    return subprocess.run([str(renderer), "48000", str(n), "--model", str(path)], capture_output=True, env=env, timeout=120)


def _graph_node(document, path):
    """The node at IR path ``path`` of ``document`` (a copy is the caller's)."""
    stack = [document["graph"]]
    while stack:
        node = stack.pop()
        if node.get("path") == path:
            return node
        stack.extend(node.get("children", []))
        stack.extend(node[k] for k in ("feedforward", "feedback") if k in node)
    raise KeyError(path)


LOOP_DELAY = "core.branchA.1.feedforward"  # flamo_models.fdn: Parallel(Series(b, Recursion(delays, ...), c), dry)
INPUT_GAINS = "core.branchA.0"


def _set(path, **fields):
    def change(document):
        _graph_node(document, path).update(fields)
        return json.dumps(document)
    return change


def _deep(depth):
    def change(document):
        graph = json.dumps(document["graph"])
        wrapper = '{"kind": "series", "in": 1, "out": 2, "children": ['
        document["graph"] = "@GRAPH@"
        return json.dumps(document).replace('"@GRAPH@"', wrapper * depth + graph + "]}" * depth)
    return change


def _text(edit):
    return lambda document: edit(json.dumps(document))


def _number_token(token):
    # the first delay of the loop as a raw token (not JSON, or beyond double)
    def change(document):
        _graph_node(document, LOOP_DELAY)["samples"][0] = "@TOKEN@"
        return json.dumps(document).replace('"@TOKEN@"', token)
    return change


def _control(document, name, **fields):
    document["realisation"]["controls"][name].update(fields)
    return document


# (name, the document's text from the fdn seed, substrings the message must hold)
BAD = [
    ("truncated", _text(lambda t: t[: len(t) // 2]), ["IR: not a JSON document"]),
    ("truncated-to-nothing", _text(lambda t: ""), ["IR: not a JSON document"]),
    ("malformed", _text(lambda t: t.replace('"graph":', '"graph"=', 1)), ["IR: not a JSON document"]),
    ("trailing-garbage", _text(lambda t: t + "}"), ["IR: not a JSON document"]),
    ("binary", _text(lambda t: "\x00\xff" + t), ["IR: not a JSON document"]),
    ("nan-token", _number_token("NaN"), ["IR: not a JSON document"]),
    ("infinity-token", _number_token("Infinity"), ["IR: not a JSON document"]),
    ("beyond-double", _number_token("1e400"), ["IR: not a JSON document", "number overflow"]),
    ("unknown-kind", _set(LOOP_DELAY, kind="warp_drive"), [LOOP_DELAY, "warp_drive", "realises no IR node kind"]),
    ("kind-not-a-string", _set(LOOP_DELAY, kind=7), [LOOP_DELAY, "'kind' must be a string"]),
    ("delay-beyond-the-limit", _set(LOOP_DELAY, samples=[1e7, 59, 73, 101, 127, 151, 173, 197]), [LOOP_DELAY, "above the limit"]),
    ("negative-delay", _set(LOOP_DELAY, samples=[-3, 59, 73, 101, 127, 151, 173, 197]), [LOOP_DELAY, "negative delay"]),
    ("nested-10000-deep", _deep(10000), ["nested deeper than 100"]),
    ("nested-101-series", _deep(101), ["nested deeper than 100"]),
    ("channels-1e9", _set(INPUT_GAINS, out=10 ** 9), [INPUT_GAINS, "'out' must be an integer in 1..1024"]),
    ("document-channels-1e9", lambda d: json.dumps({**d, "input_channels": 10 ** 9}), ["IR: 'input_channels' must be an integer"]),
    ("channels-2^64", _set(INPUT_GAINS, out=2 ** 64 - 1), [INPUT_GAINS, "'out' must be an integer"]),
    ("root-a-list", _text(lambda t: "[" + t + "]"), ["IR: expected a JSON object"]),
    ("root-a-number", _text(lambda t: "42"), ["IR: expected a JSON object"]),
    ("root-null", _text(lambda t: "null"), ["IR: expected a JSON object"]),
    ("graph-a-list", lambda d: json.dumps({**d, "graph": []}), ["<root>", "expected an object"]),
    ("samples-a-string", _set(LOOP_DELAY, samples="long"), [LOOP_DELAY, "samples: expected a list of 8 numbers"]),
    ("samples-of-strings", _set(LOOP_DELAY, samples=["1"] * 8), [LOOP_DELAY, "samples: expected a number"]),
    ("diagonal-a-number", _set(LOOP_DELAY, diagonal=1), [LOOP_DELAY, "'diagonal' must be true or false"]),
    ("in-a-string", _set(LOOP_DELAY, **{"in": "8"}), [LOOP_DELAY, "'in' must be an integer"]),
    ("in-a-float", _set(LOOP_DELAY, **{"in": 8.0}), [LOOP_DELAY, "'in' must be an integer"]),
    ("matrix-ragged", _set(INPUT_GAINS, matrix=[[1.0]] * 7 + [[1.0, 2.0]]), [INPUT_GAINS, "matrix: expected a list of 1 numbers"]),
    ("children-an-object", _set("core", children={}), ["core: parallel: 'children' must be a list of nodes"]),
    ("missing-field", _set(LOOP_DELAY, integer=None), [LOOP_DELAY, "'integer' must be true or false"]),
    ("gain-beyond-float", _set(INPUT_GAINS, matrix=[[1e300]] + [[1.0]] * 7), [INPUT_GAINS, "1e+300", "beyond the float range"]),
    # the float player computes with the controls' numbers too (before: rt60.trained 1e39 was inf in float, NaN out)
    ("rt60-trained-beyond-float", lambda d: json.dumps(_control(d, "rt60", trained=1e39)),
     ["realisation: controls: rt60.trained: beyond the float range"]),
    ("rt60-max-beyond-float", lambda d: json.dumps(_control(d, "rt60", max=1e300)),
     ["realisation.controls: control rt60: max: beyond the float range"]),
    ("pre-delay-beyond-the-limit", lambda d: json.dumps(_control(d, "pre_delay", max=1e6)),
     ["realisation: controls: pre_delay.max is above the longest delay"]),
    # what the document says is quoted printable (no line break, terminal escape or NUL from the file in a message)
    ("kind-with-control-characters", _set(LOOP_DELAY, kind="warp\n\x1b[2Jred\x00tail"), [LOOP_DELAY, "warp??[2Jred?tail"]),
    ("unknown-control", lambda d: json.dumps({**d, "realisation": {**d["realisation"], "controls": {"evil\n\x1b[2J": {}}}}),
     ["realisation: controls: unknown control 'evil??[2J'"]),
    ("escape-in-the-text", _text(lambda t: t[:40] + "\x1b[2J\xff" + t[40:]), ["IR: not a JSON document", "<U+001B>"]),
]


@pytest.mark.parametrize("build", ["release", "checked"])
def test_the_seeds_render_finite(renderers, seeds, build):
    renderer, env = renderers[build]
    for name, (path, _) in seeds.items():
        proc = _render(renderer, env, path, 1024)
        assert proc.returncode == 0, (name, proc.stderr.decode(errors="replace")[-3000:])
        raw = np.frombuffer(proc.stdout, dtype="<f8")
        assert raw.size > 2 and np.isfinite(raw).all() and np.abs(raw[2:]).max() > 0, name


@pytest.mark.parametrize("build", ["release", "checked"])
@pytest.mark.parametrize("name,make,expected", BAD, ids=[b[0] for b in BAD])
def test_a_bad_document_is_refused_with_a_message_naming_where(renderers, seeds, tmp_path, build, name, make, expected):
    renderer, env = renderers[build]
    path = tmp_path / f"{name}.json"
    text = make(copy.deepcopy(seeds["fdn"][1]))
    path.write_bytes(text.encode("latin-1") if name in ("binary", "escape-in-the-text") else text.encode())
    proc = _render(renderer, env, path)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, stderr[-3000:]
    assert not any(s in stderr for s in SANITIZER_REPORTS), stderr[-3000:]
    assert stderr.startswith("adac: error: "), stderr[:500]
    # one printable line
    assert stderr.endswith("\n") and stderr.count("\n") == 1 and stderr.isascii() and stderr[:-1].isprintable(), repr(stderr[:1000])
    message = stderr[:-1]
    assert message.startswith(f"adac: error: {path}: ") and len(message) < 600, message[:1000]
    for part in expected:
        assert part in message, (part, message)
    assert proc.stdout == b""


def _wide(nodes=70, channels=1024):
    """A series of diagonal gains of 1024 channels: each node's output is a buffer of a block per channel."""
    gains = [{"kind": "gain", "path": f"wide.{i}", "in": channels, "out": channels, "diagonal": True, "gains": [0.5] * channels}
             for i in range(nodes)]
    return {"format": "adac-ir", "version": "1.0", "name": "wide", "fs": 48000, "input_channels": channels,
            "output_channels": channels, "graph": {"kind": "series", "path": "wide", "in": channels, "out": channels,
                                                   "children": gains}}


def _pre_delay(inputs=1024, max_ms=21000.0):
    """A mix of many inputs with a pre-delay of up to 21 s: one line per input, sized for 192 kHz."""
    return {"format": "adac-ir", "version": "1.0", "name": "pre", "fs": 48000, "input_channels": inputs, "output_channels": 1,
            "graph": {"kind": "gain", "path": "mix", "in": inputs, "out": 1, "diagonal": False, "matrix": [[1.0] * inputs]},
            "realisation": {"controls": {"pre_delay": {"default": 0.0, "min": 0.0, "max": max_ms}}}}


# the memory a document makes a player allocate is bounded when it loads (before: 10000 such gains were 20 GB of
# blocks, a pre-delay of 21 s on 1024 inputs 32 GB; the player died of std::bad_alloc or the machine of the OOM killer)
@pytest.mark.parametrize("build", ["release", "checked"])
@pytest.mark.parametrize("document,expected", [
    (_wide(), "wide.63: gain: the model's nodes give more than 65536 signals"),
    (_pre_delay(), "realisation: controls: pre_delay: its lines on 1024 inputs and the model's delays need more than 33554432 samples"),
], ids=["signals", "pre-delay-lines"])
def test_a_document_asking_for_unbounded_memory_is_refused(renderers, tmp_path, build, document, expected):
    renderer, env = renderers[build]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(document))
    proc = _render(renderer, env, path)
    assert proc.returncode == 2 and proc.stderr.decode().startswith(f"adac: error: {path}: {expected}"), proc.stderr[-2000:]


@pytest.mark.parametrize("document", [_wide(nodes=60), _pre_delay(inputs=16, max_ms=1000.0)], ids=["signals", "pre-delay-lines"])
def test_a_document_within_the_memory_bounds_plays(renderers, tmp_path, document):
    renderer, env = renderers["release"]
    path = tmp_path / "within.json"
    path.write_text(json.dumps(document))
    frames = tmp_path / "input.f64"  # one instance on noise (not one per input channel)
    np.random.default_rng(0).uniform(-1, 1, (64, document["input_channels"])).astype("<f8").tofile(frames)
    proc = subprocess.run([str(renderer), "48000", "64", "--input", str(frames), "--model", str(path)], capture_output=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    out = np.frombuffer(proc.stdout, dtype="<f8")
    assert np.isfinite(out).all() and np.abs(out[2:]).max() > 0


@pytest.mark.parametrize("where,reason", [("nowhere.json", "cannot open the file"), (".", "not a readable document")])
def test_a_missing_model_file_or_a_folder_is_refused(renderers, tmp_path, where, reason):
    renderer, env = renderers["release"]
    proc = _render(renderer, env, tmp_path / where)
    assert proc.returncode == 2 and proc.stderr.decode().startswith(f"adac: error: {tmp_path / where}: {reason}"), proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# what the runtime does not realise


def _loop(feedforward_samples, feedback_samples=None, integer=True):
    """A 2-channel loop: delays (feedforward) and, back, gains of 0.5 (and delays when given)."""
    delays = {"kind": "delay", "path": "loop.feedforward", "in": 2, "out": 2, "diagonal": True, "integer": integer,
              "samples": feedforward_samples}
    gains = {"kind": "gain", "path": "loop.feedback.gains", "in": 2, "out": 2, "diagonal": True, "gains": [0.5, 0.5]}
    feedback = gains
    if feedback_samples is not None:
        feedback = {"kind": "series", "path": "loop.feedback", "in": 2, "out": 2,
                    "children": [gains, {**delays, "path": "loop.feedback.delays", "samples": feedback_samples}]}
    return {"format": "adac-ir", "version": "1.0", "name": "loop", "fs": 48000, "input_channels": 2, "output_channels": 2,
            "graph": {"kind": "recursion", "path": "loop", "in": 2, "out": 2, "feedforward": delays, "feedback": feedback}}


@pytest.mark.parametrize("feedforward,feedback,integer", [
    ([0, 0], None, True),            # no delay at all
    ([0, 5], None, True),            # one channel without a delay
    ([0.5, 0.25], None, False),      # fractional delays below a sample: the interpolator reads the present sample
    # every channel's cycle has a delay (0 + 2, 3 + 0), but neither path on every channel: the runtime, which runs a
    # loop in blocks up to one path's latency, refuses it (a limitation, named)
    ([0, 3], [2, 0], True),
])
def test_a_delay_free_loop_is_refused_naming_the_loop(renderers, tmp_path, feedforward, feedback, integer):
    renderer, env = renderers["checked"]
    path = tmp_path / "loop.json"
    path.write_text(json.dumps(_loop(feedforward, feedback, integer)))
    proc = _render(renderer, env, path)
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, stderr[-2000:]
    assert stderr.startswith(f"adac: error: {path}: loop: recursion: delay-free loop"), stderr[:500]


def test_a_loop_with_a_delay_on_every_channel_plays(renderers, tmp_path):
    renderer, env = renderers["checked"]
    path = tmp_path / "loop.json"
    path.write_text(json.dumps(_loop([1, 3], [2, 0])))
    proc = _render(renderer, env, path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    raw = np.frombuffer(proc.stdout, dtype="<f8")
    assert np.isfinite(raw).all() and np.abs(raw[2:]).max() > 0


def _gains(inputs, outputs, controls):
    return {"format": "adac-ir", "version": "1.0", "name": "gains", "fs": 48000, "input_channels": inputs, "output_channels": outputs,
            "graph": {"kind": "gain", "path": "mix", "in": inputs, "out": outputs, "diagonal": False,
                      "matrix": [[0.5] * inputs for _ in range(outputs)]},
            "realisation": {"controls": controls}}


RT60 = {"trained": 1.0, "default": 1.0, "min": 0.1, "max": 2.0, "gamma_max": 1.0}
DRY_WET = {"default": 1.0, "min": 0.0, "max": 1.0, "law": "equal_power"}


@pytest.mark.parametrize("document,expected", [
    (_gains(1, 2, {"rt60": RT60}), "realisation.controls: rt60: the model has no feedback loop to scale"),
    (_gains(2, 3, {"dry_wet": DRY_WET}), "realisation: controls: dry_wet: a model with 2 inputs and 3 outputs has no dry signal"),
], ids=["rt60-without-a-loop", "dry-wet-without-a-dry-signal"])
def test_a_control_the_model_cannot_have_is_refused(renderers, tmp_path, document, expected):
    renderer, env = renderers["checked"]
    path = tmp_path / "controls.json"
    path.write_text(json.dumps(document))
    proc = _render(renderer, env, path)
    assert proc.returncode == 2 and proc.stderr.decode().startswith(f"adac: error: {path}: {expected}"), proc.stderr[-2000:]
    # the same model without the control plays
    path.write_text(json.dumps({**document, "realisation": {"controls": {}}}))
    assert _render(renderer, env, path).returncode == 0
