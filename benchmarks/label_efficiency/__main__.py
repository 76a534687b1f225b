"""Label efficiency: accuracy against teacher cost for each strategy, against random and small-text.

    python -m benchmarks.label_efficiency            # the default grid
    python -m benchmarks.label_efficiency --quick    # the small grid CI runs

The same as `distilloop bench` (run from a checkout); see benchmarks/label_efficiency/__init__.py for what is
measured and how.
"""

import sys

from distilloop.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
