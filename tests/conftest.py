import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", module="flamo")

# FLOAT32 / DOUBLE tolerances of the core issue: max abs error relative to the peak of FLAMO's response.
FLOAT32_TOL = 1e-6
DOUBLE_TOL = 1e-9


def pytest_configure(config):
    os.environ.setdefault("ADAC_CACHE", str(config.rootpath / "build" / "cache"))


@pytest.fixture(scope="session")
def faust_available():
    if shutil.which(os.environ.get("ADAC_FAUST", "faust")) is None:
        pytest.fail("the FAUST compiler is not installed: run scripts/setup.sh (equivalence tests must not be skipped)")
    return True


def build_example() -> dict:
    """The shipped example built by the README's command path (`scons plugins/AdacFDN`): its listing
    build/AdacFDN/AdacFDN.bundles.json, {"bundles": {"VST3"|"LV2"|"Standalone": {"path": str, "sha256": str}}, ...}."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(["scons", "-Q", "plugins/AdacFDN"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((root / "build" / "AdacFDN" / "AdacFDN.bundles.json").read_text())


@pytest.fixture(scope="session")
def example_bundles(faust_available):
    """:func:`build_example`, once per session."""
    return build_example()
