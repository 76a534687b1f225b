"""Several servers of one model (e.g. a llama.cpp or vLLM server per GPU node) behind one teacher.

The servers are replicas: the same model answers the same prompt the same way on each, so a call may go to any
of them, and its request hash (the key under which an answer, once paid, is reused) does not name the server.
:class:`ServerPool` spreads calls over the servers that are up (the one with the fewest calls in flight first,
in turn among equals); a server that cannot be reached (connection refused or dropped, no answer in time) is
taken out for ``retry_s`` seconds, doubled each time it fails again (at most ``MAX_RETRY_S``), then tried again
with the next call. The teacher, its budget and its rate limiter stay one: the pool only chooses the address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_RETRY_S = 600.0


@dataclass
class ServerState:
    """One server's health and load, as the pool sees it."""

    url: str
    in_flight: int = 0
    failures: int = 0  # consecutive failures to reach it
    down_until: float = 0.0  # clock time before which it is not tried
    answered: int = 0
    last_error: str = ""


class ServerPool:
    """Chooses which of several replica servers takes the next call, and keeps dead ones out for a while."""

    def __init__(self, urls: Sequence[str], *, retry_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.servers = {u: ServerState(u) for u in urls}
        self.retry_s = retry_s
        self.clock = clock
        self._turn = 0

    def candidates(self) -> list[str]:
        """The servers to try for one call, in order: those up (or due for a retry), least loaded first."""
        now = self.clock()
        up = [s for s in self.servers.values() if s.down_until <= now]
        self._turn += 1
        n = len(self.servers)
        index = {u: i for i, u in enumerate(self.servers)}
        up.sort(key=lambda s: (s.in_flight, (index[s.url] - self._turn) % n))
        return [s.url for s in up]

    def begin(self, url: str) -> None:
        self.servers[url].in_flight += 1

    def end(self, url: str, *, ok: bool, error: str = "") -> None:
        """A call to ``url`` is over: answered (``ok``), or the server could not be reached (it is taken out)."""
        s = self.servers[url]
        s.in_flight = max(0, s.in_flight - 1)
        if ok:
            if s.failures:
                log.info("server %s answers again", url)
            s.failures, s.down_until = 0, 0.0
            s.answered += 1
            return
        s.last_error = error
        now = self.clock()
        if s.down_until > now:  # calls sent before it was taken out, failing now: the same failure
            return
        s.failures += 1
        wait = min(MAX_RETRY_S, self.retry_s * 2 ** (s.failures - 1))
        s.down_until = now + wait
        log.warning("server %s taken out for %.0f s (%s); its calls go to the other servers", url, wait, error[:200])

    def retry_in(self) -> float:
        """Seconds until the first server that is out may be tried again (0 when one is up)."""
        now = self.clock()
        return max(0.0, min(s.down_until for s in self.servers.values()) - now) if self.servers else 0.0

    def describe(self) -> str:
        now = self.clock()
        return ", ".join(f"{s.url} " + ("up" if s.down_until <= now else f"out ({s.last_error[:80]})")
                         for s in self.servers.values())
