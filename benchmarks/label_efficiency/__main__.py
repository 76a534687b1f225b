"""Every lever of the pipeline (the default), or label efficiency for each strategy against random and small-text.

    python -m benchmarks.label_efficiency                          # the lever grid (levers.py)
    python -m benchmarks.label_efficiency --selection              # the strategy grid (__init__.py)
    python -m benchmarks.label_efficiency --selection --quick      # the small grid CI runs

The same as `distilloop bench` (run from a checkout); see benchmarks/label_efficiency/__init__.py and levers.py for
what is measured and how.
"""

import sys

from distilloop.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
