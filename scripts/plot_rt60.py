#!/usr/bin/env python3
"""IR, energy decay curves (compiled FAUST vs FLAMO) and the rt60 slider sweep of a model, to a PNG.

    python3 scripts/plot_rt60.py --ir build/AdacFDN/AdacFDN.json --out docs/img/rt60.png

Same as ``python3 -m adac.plots``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adac.plots import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
