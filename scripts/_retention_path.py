"""Make the ``retention`` package beside scripts/ importable where it is not installed.

Snakemake puts a script's folder on ``sys.path``; each script imports this module
first, so jobs in conda environments (which do not install the package) find it.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
