"""Named points where a test or a benchmark can kill the process, to prove a campaign resumes from any of them.

``DISTILLOOP_FAILPOINT=<name>:<n>`` makes the ``n``-th time :func:`failpoint` is reached with ``name`` (counted
from 1 in this process) send SIGKILL to the process itself: no ``finally``, no ``atexit``, exactly like a
``kill -9`` or a power cut there. Unset (always, outside tests), a failpoint is one dictionary lookup.
``benchmarks/crash_resume.py`` kills a campaign at every point named in :data:`POINTS`.
"""

from __future__ import annotations

import os
import signal

#: where the loop has a failpoint: inside each step, and between a step's work and its checkpoint
POINTS = ("selected", "call_written", "answer_received", "answer_settled", "batch_submitted", "aggregated",
          "committed", "reviews_pulled", "trained", "student_saved", "student_recorded")

_counts: dict[str, int] = {}
_target: tuple[str, int] | None = None
_parsed = False


def _parse() -> tuple[str, int] | None:
    spec = os.environ.get("DISTILLOOP_FAILPOINT", "")
    name, _, n = spec.partition(":")
    if not name:
        return None
    return name, int(n or 1)


def failpoint(name: str) -> None:
    """Kill this process here if ``DISTILLOOP_FAILPOINT`` names this point and its count is reached."""
    global _target, _parsed
    if not _parsed:
        _target, _parsed = _parse(), True
    if _target is None or _target[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
