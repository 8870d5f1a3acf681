"""The SCons build, for real: what a change rebuilds, and nothing else.

Runs `scons` on a 4-line test plugin (tests/data/plugins/Tiny), building the IR
and .dsp steps (the JUCE step is covered by test_plugin_host.py). Each test uses
its own build folder inside the project, as the build requires.
"""
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "plugins"

pytestmark = pytest.mark.usefixtures("faust_available")


class Build:
    def __init__(self, tmp_path):
        self.plugins = tmp_path / "plugins"
        shutil.copytree(DATA, self.plugins)
        self.root = ROOT / "build" / "tests" / uuid.uuid4().hex[:10]
        self.out = self.root / "Tiny"

    def scons(self, *args, check=True):
        cmd = ["scons", "-Q", f"PLUGINS={self.plugins}", f"BUILD_ROOT={self.root.relative_to(ROOT)}",
               "STEPS=ir,dsp,cert" if self.have_cert() else "STEPS=ir,dsp", *args]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    @staticmethod
    def have_cert():
        return (ROOT / "adac" / "certify.py").exists()

    def mtimes(self):
        return {p.name: p.stat().st_mtime_ns for p in self.out.iterdir() if p.is_file()}

    def steps_run(self, proc):
        return re.findall(r"^adac (\w+)", proc.stdout, flags=re.M)

    def manifest(self, old, new):
        path = self.plugins / "Tiny" / "plugin.yaml"
        path.write_text(path.read_text().replace(old, new))


@pytest.fixture
def build(tmp_path):
    b = Build(tmp_path)
    yield b
    shutil.rmtree(b.root, ignore_errors=True)


def test_incremental_rebuilds(build):
    first = build.scons("plugins/Tiny")
    assert {"ir", "dsp"} <= set(build.steps_run(first))
    assert (build.out / "Tiny.json").exists() and (build.out / "Tiny.dsp").exists()
    built = build.mtimes()

    # no-op: nothing runs, `scons -n` has nothing to do, and it is quick
    start = time.monotonic()
    again = build.scons("plugins/Tiny")
    noop_seconds = time.monotonic() - start
    assert build.steps_run(again) == [] and build.mtimes() == built
    assert build.steps_run(build.scons("-n", "plugins/Tiny")) == []
    assert noop_seconds < 5, noop_seconds  # about a second here; generous for loaded CI machines

    # the same checkpoint bytes saved again: nothing rebuilds
    checkpoint = build.plugins / "Tiny" / "checkpoint.pt"
    data = checkpoint.read_bytes()
    time.sleep(0.05)
    checkpoint.write_bytes(data)
    assert build.steps_run(build.scons("plugins/Tiny")) == []

    # a DSP-only manifest field: the .dsp (and what follows) rebuilds, the IR does not
    build.manifest("fs: 48000", "fs: 48000\nfractional_order: 7")
    steps = build.steps_run(build.scons("plugins/Tiny"))
    assert "dsp" in steps and "ir" not in steps
    after = build.mtimes()
    assert after["Tiny.json"] == built["Tiny.json"] and after["Tiny.dsp"] != built["Tiny.dsp"]

    # new checkpoint values: IR and .dsp rebuild
    state = torch.load(checkpoint, weights_only=True)
    key = next(k for k in state if "output_gain" in k)
    state[key] = state[key] * 0.5
    torch.save(state, checkpoint)
    steps = build.steps_run(build.scons("plugins/Tiny"))
    assert steps[:2] == ["ir", "dsp"]
    assert build.steps_run(build.scons("plugins/Tiny")) == []


def test_a_failed_step_leaves_no_target(build):
    build.scons("plugins/Tiny/ir")
    checkpoint = build.plugins / "Tiny" / "checkpoint.pt"
    checkpoint.write_bytes(b"corrupt")
    proc = build.scons("plugins/Tiny/ir", check=False)
    assert proc.returncode != 0
    assert "adac: error:" in proc.stderr and "cannot load checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (build.out / "Tiny.json").exists()
    # and the next build tries again instead of thinking it is up to date
    assert build.scons("-n", "plugins/Tiny/ir").stdout.count("adac ir") == 1


def test_build_root_outside_the_project_is_refused(tmp_path):
    proc = subprocess.run(["scons", "-Q", "BUILD_ROOT=/tmp/elsewhere", "STEPS=ir"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "must be a folder inside" in proc.stdout + proc.stderr
