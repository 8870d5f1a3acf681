import os
import shutil
import warnings

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
