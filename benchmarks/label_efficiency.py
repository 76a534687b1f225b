"""Label efficiency: accuracy against teacher cost for each strategy, against random and small-text.

    python benchmarks/label_efficiency.py            # the default grid (see distilloop.bench)
    python benchmarks/label_efficiency.py --quick    # the small grid CI runs

The same as `distilloop bench`; see distilloop/bench.py for what is measured and how.
"""

import sys

from distilloop.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
