"""Hostile inputs (issue 14): each is one line ``adac: error: ...`` naming the file and the field, exit code 2
(130 for Ctrl-C), never a traceback, and leaves nothing behind: no target, no temp file.

IR files go through ``adac.ir.load_ir`` and the ``adac emit`` command (in this process, and a few as real
``python3 -m adac`` processes); build folders that the system refuses to write (read-only, full) are real
tmpfs mounts when this machine lets us mount (root ignores permission bits, so a chmod would prove nothing),
and a path under a regular file everywhere.
"""
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adac.build.cli import main
from adac.common.errors import AdacError, SchemaError
from adac.common.fileio import read_json, write_text_atomic
from adac.hotreload import HotReload
from adac.ir import load_ir

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "plugins" / "Tiny" / "plugin.yaml"
FS = 48000

HEADER = {"format": "adac-ir", "version": "1.0", "name": "t", "fs": FS, "input_channels": 1, "output_channels": 1,
          "adac_version": "0.1.0", "flamo": {"version": "0.2.20", "nfft": 2048, "alias_decay_db": 0.0,
                                             "dtype": "float32", "shell": {"input_layer": "Identity",
                                                                           "output_layer": "Identity"}}}


def ir_with(graph: dict, **header) -> dict:
    return {**copy.deepcopy(HEADER), **header, "graph": graph}


def fir(taps) -> dict:
    return {"id": "n0", "path": "f", "name": "f", "kind": "fir", "diagonal": True, "taps": taps, "in": 1, "out": 1}


def sos(sections) -> dict:
    return {"id": "n0", "path": "s", "name": "s", "kind": "sos", "diagonal": True, "sections": sections, "in": 1, "out": 1}


def deep_series(depth: int) -> dict:
    node = {"id": "n0", "path": "g", "name": "g", "kind": "gain", "diagonal": True, "gains": [0.5], "in": 1, "out": 1}
    for i in range(1, depth + 1):
        node = {"id": f"n{i}", "path": f"s{i}", "name": "s", "kind": "series", "children": [node], "in": 1, "out": 1}
    return node


GOOD = json.dumps(ir_with(fir([[1.0], [0.5]])))

# name: (file content, what the one-line error says after "<file>: ")
BAD_IRS = {
    "int-too-large-for-a-float": (GOOD.replace("0.5", "1" + "0" * 400),
                                  r"/graph/taps/1/0: the number 100000000000\.\.\.000000 \(401 characters\) is too large for a float"),
    "exponent-too-large-for-a-float": (GOOD.replace("0.5", "1e400"), r"/graph/taps/1/0: the number is too large for a float \(it reads as infinity\)"),
    "5000-digit-integer": (GOOD.replace("0.5", "7" * 5000), r"/graph/taps/1/0: the number 777.*\(5000 characters\) is too large"),
    "5000-digit-fs": (GOOD.replace('"fs": 48000', '"fs": ' + "9" * 5000), r"/fs: the number 999.* is too large"),
    "ragged-fir-taps": (json.dumps(ir_with(fir([[1.0], [0.5, 0.25]]))),
                        r"/graph/taps: ragged array: item 1 has shape \(2,\), item 0 has shape \(1,\)"),
    "string-fir-tap": (json.dumps(ir_with(fir([[1.0], ["x"]]))), r'/graph/taps/1/0: "x" is not a number'),
    "null-fir-tap": (json.dumps(ir_with(fir([[1.0], [None]]))), r"/graph/taps/1/0: null is not a number"),
    "bool-fir-tap": (json.dumps(ir_with(fir([[1.0], [True]]))), r"/graph/taps/1/0: true is not a number"),
    "over-nested-sos": (json.dumps(ir_with(sos([[[[[1.0]]], [[[0.0]]], [[[0.0]]], [[[1.0]]], [[[0.0]]], [[[0.0]]]]]))),
                        r"/graph/sections: shape \(1, 6, 1, 1, 1\) does not match"),
    "ragged-sos": (json.dumps(ir_with(sos([[[1.0], [0.0], [0.0], [1.0], [0.0], [0.0, 1.0]]]))),
                   r"/graph/sections/0: ragged array"),
    "200-deep-series": (json.dumps(ir_with(deep_series(200))),
                        r"/graph/children/0/children/0/.*: nested more than 100 levels deep"),
    "100000-deep-array": ("[" * 100000 + "]" * 100000, r"nested more than 100 levels deep"),
    "not-utf8": (b'{"format": "adac-ir", "name": "\xff\xfe"}', r"line 1: not UTF-8 text \(byte 0xff at offset 31\)"),
    "version-with-a-newline": (GOOD.replace('"version": "1.0"', '"version": "1.0\\n"'), r"/version: '1\.0\\n' does not match"),
    "id-with-a-newline": (GOOD.replace('"id": "n0"', '"id": "n0\\n"'), r"/graph/id: 'n0\\n' does not match"),
}


def write(path: Path, content) -> Path:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_a_good_ir_loads(tmp_path):
    """The base of the bad cases below is itself valid."""
    assert load_ir(write(tmp_path / "good.json", GOOD))["graph"]["taps"] == [[1.0], [0.5]]


@pytest.mark.parametrize("case", sorted(BAD_IRS))
def test_bad_ir_files_are_one_line_errors_naming_file_and_field(tmp_path, case):
    content, says = BAD_IRS[case]
    path = write(tmp_path / "model.json", content)
    with pytest.raises(AdacError) as info:
        load_ir(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert re.search(says, message), message


@pytest.mark.parametrize("case", ["ragged-fir-taps", "int-too-large-for-a-float", "200-deep-series", "not-utf8",
                                  "over-nested-sos"])
def test_emit_of_a_bad_ir_prints_one_line_and_writes_nothing(tmp_path, capsys, case):
    (tmp_path / "in").mkdir()
    ir = write(tmp_path / "in" / "model.json", BAD_IRS[case][0])
    build = tmp_path / "build"
    code = main(["--build-root", str(build), "emit", str(TINY), str(ir), str(build / "Tiny" / "Tiny.dsp")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"adac: error: {ir}: ") and err.count("\n") == 1, err
    assert not build.exists() or files_under(build) == []


def test_a_directory_given_as_a_file(tmp_path, capsys):
    folder = tmp_path / "model.json"
    folder.mkdir()
    with pytest.raises(AdacError, match=rf"^{folder}: cannot read the IR file \(it is a directory\)$"):
        load_ir(folder)
    build = tmp_path / "build"
    assert main(["--build-root", str(build), "emit", str(TINY), str(folder), str(build / "x.dsp")]) == 2
    err = capsys.readouterr().err
    assert err == f"adac: error: {folder}: cannot read the IR file (it is a directory)\n"
    # and an output path that is a directory: refused, the directory left as it was
    (build / "x.dsp").mkdir(parents=True)
    ir = write(tmp_path / "good.json", GOOD)
    assert main(["--build-root", str(build), "emit", str(TINY), str(ir), str(build / "x.dsp")]) == 2
    assert capsys.readouterr().err == f"adac: error: {build / 'x.dsp'}: cannot write (it is a directory)\n"
    assert files_under(build) == []


def test_a_dsp_that_is_not_utf8_or_a_directory(tmp_path, capsys):
    """Steps that read a text file themselves (juce reads the .dsp): the command still names the file."""
    build = tmp_path / "build"
    bad = write(tmp_path / "bad.dsp", b"process = _;\xff\n")
    assert main(["--build-root", str(build), "juce", str(TINY), str(bad), str(build / "juce")]) == 2
    assert capsys.readouterr().err == f"adac: error: {bad}: line 1: not UTF-8 text (byte 0xff at offset 12)\n"
    folder = tmp_path / "folder.dsp"
    folder.mkdir()
    assert main(["--build-root", str(build), "juce", str(TINY), str(folder), str(build / "juce")]) == 2
    assert capsys.readouterr().err == f"adac: error: {folder}: cannot read the FAUST file (it is a directory)\n"
    assert not build.exists()


def test_an_output_under_a_regular_file(tmp_path, capsys):
    """The OSError path that needs no privileges: the build folder's parent is a file."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "Tiny").write_text("a file where a folder should be")
    ir = write(tmp_path / "good.json", GOOD)
    assert main(["--build-root", str(build), "emit", str(TINY), str(ir), str(build / "Tiny" / "Tiny.dsp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"adac: error: {build / 'Tiny' / 'Tiny.dsp'}: cannot write (") and err.count("\n") == 1, err
    assert files_under(build) == ["Tiny"]


def test_read_json_bounds_without_a_schema(tmp_path):
    """adac.common.fileio.read_json: the bounded reader every JSON input goes through."""
    assert read_json(write(tmp_path / "a.json", "[[[1]]]"), max_depth=3) == [[[1]]]
    with pytest.raises(SchemaError, match=r"/0/0: nested more than 2 levels deep"):
        read_json(write(tmp_path / "a.json", "[[[1]]]"), max_depth=2)
    with pytest.raises(SchemaError, match=r"no such JSON file"):
        read_json(tmp_path / "missing.json")
    with pytest.raises(SchemaError, match=r"line 2: not valid JSON"):
        read_json(write(tmp_path / "a.json", '{"a":\n ]'))
    assert read_json(write(tmp_path / "a.json", "[1e308, -1e308, 123456789012345678901234567890]"))[2] == 123456789012345678901234567890
    with pytest.raises(AdacError, match=r"/1: the number is too large for a float"):
        read_json(write(tmp_path / "a.json", "[1e308, -1e309]"))
    nan, inf = read_json(write(tmp_path / "a.json", "[NaN, Infinity]"))  # spelled out: the caller judges them
    assert nan != nan and inf == float("inf")


# --- the system refuses the write ---------------------------------------------------------------


@pytest.fixture
def mount(tmp_path):
    """``mount(folder, options)``: a tmpfs at ``folder`` (unmounted afterwards); skips where we may not mount."""
    mounted = []

    def do(folder: Path, options: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None or os.geteuid() != 0:
            pytest.skip("needs root and mount(8) for a real read-only / full file system")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield do
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def run_adac(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "adac", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def test_a_read_only_build_folder(tmp_path, mount):
    build = mount(tmp_path / "build", "ro,size=1m")
    ir = write(tmp_path / "good.json", GOOD)
    target = build / "Tiny.dsp"
    proc = run_adac("--build-root", build, "emit", TINY, ir, target)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"adac: error: {target}: cannot write (Read-only file system)\n"
    assert files_under(build) == []


def test_a_full_disk(tmp_path, mount):
    build = mount(tmp_path / "build", "size=64k")
    filler = build / "filler"
    with open(filler, "wb", buffering=0) as handle:  # fill it up
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    ir = write(tmp_path / "good.json", GOOD)
    target = build / "Tiny.dsp"
    proc = run_adac("--build-root", build, "emit", TINY, ir, target)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"adac: error: {target}: cannot write (No space left on device)\n"
    assert files_under(build) == ["filler"]  # no target, no temp file
    # the same through the library call every step uses
    with pytest.raises(AdacError, match=r"cannot write \(No space left on device\)"):
        write_text_atomic(build / "x.txt", "x" * 100000)
    assert files_under(build) == ["filler"]


@pytest.mark.parametrize("case", ["100000-deep-array", "ragged-fir-taps"])
def test_no_traceback_from_a_real_adac_process(tmp_path, case):
    ir = write(tmp_path / "model.json", BAD_IRS[case][0])
    build = tmp_path / "build"
    proc = run_adac("--build-root", build, "emit", TINY, ir, build / "Tiny.dsp")
    assert proc.returncode == 2 and proc.stderr.startswith(f"adac: error: {ir}: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not build.exists()


@pytest.mark.parametrize("after", [0.0, 0.3], ids=["importing-torch", "later"])
def test_ctrl_c_during_a_step(tmp_path, after):
    """SIGINT while ``build-ir`` runs: one line, exit 130, no target and no temp file (the interrupt arrives once
    the command runs: while torch loads, which once made pybind11 abort with a C++ ``terminate``, and later)."""
    build = tmp_path / "build"
    proc = subprocess.Popen([sys.executable, "-m", "adac", "--build-root", str(build), "build-ir", str(TINY),
                             str(build / "Tiny" / "Tiny.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text():
                break
        except OSError:
            break
        time.sleep(0.01)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err == "adac: error: interrupted (Ctrl-C)\n", (proc.returncode, err)
    assert not build.exists() or files_under(build) == []


# --- hot reload ---------------------------------------------------------------------------------


def test_hot_reload_publishes_with_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        live = HotReload(FS, path=tmp_path / "live" / "m.dsp", emit=lambda code: code, min_interval_s=0)
        assert live.publish("process = _;\n")
    finally:
        os.umask(old)
    assert (tmp_path / "live" / "m.dsp").stat().st_mode & 0o777 == 0o644


def test_hot_reload_path_that_is_a_directory(tmp_path):
    folder = tmp_path / "m.dsp"
    folder.mkdir()
    with pytest.raises(AdacError, match=rf"^HotReload: {folder} is a directory"):
        HotReload(FS, path=folder)
    live = HotReload(FS, path=tmp_path / "later.dsp", emit=lambda code: code, min_interval_s=0)
    (tmp_path / "later.dsp").mkdir()  # made a directory after the publisher was set up
    with pytest.raises(AdacError, match=r"later\.dsp: HotReload: cannot publish \(it is a directory\)"):
        live.publish("process = _;\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["later.dsp", "m.dsp"]


# --- the hot-reload host's status file ----------------------------------------------------------


def test_status_file_is_written_before_the_host_reports_the_count(tmp_path):
    """The host used to bump its failure/reload counts before it renamed status.json into place, so a reader
    who saw the count (``waitfail``/``wait``) could still read the old file (5 stale reads in 40 here)."""
    from adac.hotreload import build_host

    pytest.importorskip("numpy")
    if shutil.which(os.environ.get("ADAC_FAUST", "faust")) is None:
        pytest.fail("the FAUST compiler is not installed: run scripts/setup.sh")
    binary = build_host(targets=("cli",))["cli"]
    live = HotReload(FS, path=tmp_path / "live.dsp", emit=lambda code: code, min_interval_s=0)
    status = tmp_path / "status.json"
    live.publish("process = _ * 0.5;\n")
    host = subprocess.Popen([str(binary), str(live.path), str(FS), "--status", str(status)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ask(line):
        host.stdin.write(line + "\n")
        host.stdin.flush()
        return host.stdout.readline().strip()

    try:
        assert ask("wait 1 20000") == "ok"
        stale = []
        for k in range(1, 16):
            live.publish(f"process = this is not faust {k};\n")
            assert ask(f"waitfail {k} 20000") == "ok"
            report = json.loads(status.read_text())
            if report["failures"] != k or report["ok"]:
                stale.append(("failures", k, report["failures"]))
            live.publish(f"process = _ * 0.{k + 1};\n")
            assert ask(f"wait {k + 1} 20000") == "ok"
            report = json.loads(status.read_text())
            if report["reloads"] != k + 1 or not report["ok"]:
                stale.append(("reloads", k + 1, report["reloads"]))
        assert stale == []
    finally:
        if host.poll() is None:
            host.stdin.write("quit\n")
            host.stdin.flush()
        host.wait(timeout=20)
