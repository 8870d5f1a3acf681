"""The machine a measurement ran on, named: every benchmark and the report print it beside their figures."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> dict:
    """CPU model, cores, OS, host name, Python, and the load average (1, 5, 15 min) when called."""
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "host": platform.node(),
            "python": platform.python_version(), "load_average": [round(v, 2) for v in os.getloadavg()]}
