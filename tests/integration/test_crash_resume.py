"""The crash benchmark's short variant (benchmarks/crash_resume.py --quick): a campaign on the real SDKs against
the fake server, killed with SIGKILL at random points of every step, ends exactly where the uninterrupted one does,
buys no received answer twice, and every request the server billed is in the ledger."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import crash_resume  # noqa: E402


def test_killed_at_random_points_it_ends_where_the_uninterrupted_run_does(tmp_path, capsys):
    code = crash_resume.main(["--quick", "--kills", "6", "--seed", "3", "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    print(out)
    assert code == 0, out
    assert "6 kills (SIGKILL) survived" in out and "differences from it" in out
    assert "received answers bought again: 0; questions with two answered calls: 0" in out
    assert "integrity_check: ok" in out and "billed but not in the ledger: 0" in out
