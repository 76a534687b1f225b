"""Per-teacher flow control: a concurrency cap and token buckets for requests and tokens per minute.

Providers limit requests per minute (RPM) and tokens per minute (TPM), and answer 429 when either is
crossed. Pacing below those limits on the client side avoids paying for retries; when a 429 comes anyway,
its ``retry-after`` pauses the whole teacher (:meth:`RateLimiter.pause`), not just the call that got it.

Each bucket refills continuously at ``rate / 60`` per second and holds at most one second of it (at least
one request, or one call's tokens), so the sustained rate stays at the limit with small bursts only.
A call is charged its reservation's tokens when it starts; :meth:`RateLimiter.refund` gives back what the
provider's reported usage shows it did not use. A call that is several requests (self-consistency's
``samples``) takes one request from the bucket per request, paced one by one, and as many concurrency
permits, so ``requests_per_minute`` and ``max_concurrency`` count requests, not questions.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

_CHARGED: contextvars.ContextVar[float] = contextvars.ContextVar("distilloop_ratelimit_charged", default=0.0)


class TokenBucket:
    """``rate_per_minute`` units a minute, at most ``burst`` (default: one second's worth, >= 1) at once."""

    def __init__(self, rate_per_minute: float, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be > 0, got {rate_per_minute}")
        self.rate = rate_per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, self.rate)
        self.level = self.capacity
        self.clock = clock
        self._t = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self._t) * self.rate)
        self._t = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (an amount above the capacity waits for a full bucket)."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount  # may go below zero: a call larger than the burst is paid back before the next

    def give_back(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class WeightedSemaphore:
    """``capacity`` permits; :meth:`hold` takes ``n`` of them at once (at most ``capacity``), first come first
    served, so a call of several requests is never starved by single ones. Bound to the event loop it is
    first used in (one per ``asyncio.run``)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.used = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def acquire(self, n: int = 1) -> int:
        n = max(1, min(n, self.capacity))
        if not self._waiters and self.used + n <= self.capacity:
            self.used += n
            return n
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release(n)  # granted as it was cancelled: give it back
            else:
                self._waiters = collections.deque(w for w in self._waiters if w[1] is not fut)
                self._wake()
            raise
        return n

    def release(self, n: int) -> None:
        self.used -= n
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.capacity:
            n, fut = self._waiters.popleft()
            if fut.done():
                continue
            self.used += n
            fut.set_result(None)

    @asynccontextmanager
    async def hold(self, n: int = 1) -> AsyncIterator[int]:
        got = await self.acquire(n)
        try:
            yield got
        finally:
            self.release(got)


class RateLimiter:
    """Concurrency cap + request and token buckets, shared by every call of one teacher."""

    def __init__(self, *, max_concurrency: int | None = None, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        for name, v in (("max_concurrency", max_concurrency), ("requests_per_minute", requests_per_minute),
                        ("tokens_per_minute", tokens_per_minute)):
            if v is not None and (isinstance(v, bool) or v <= 0):
                raise ValueError(f"{name} must be a positive number or None, got {v!r}")
        self.max_concurrency = max_concurrency
        self.requests = TokenBucket(requests_per_minute, clock=clock) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, clock=clock) if tokens_per_minute else None
        self.clock = clock
        self.sleep = sleep
        self.paused_until = 0.0
        self._sem: WeightedSemaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate: asyncio.Lock | None = None

    def _primitives(self) -> tuple[WeightedSemaphore | None, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # each asyncio.run() has its own loop: primitives are per loop
            self._loop = loop
            self._sem = WeightedSemaphore(int(self.max_concurrency)) if self.max_concurrency else None
            self._gate = asyncio.Lock()
        assert self._gate is not None
        return self._sem, self._gate

    def permits(self, requests: int) -> int:
        """How many of a call's ``requests`` may be in flight at once (its share of ``max_concurrency``)."""
        return max(1, min(requests, int(self.max_concurrency))) if self.max_concurrency else max(1, requests)

    def pause(self, seconds: float) -> None:
        """Hold every new call of this teacher for ``seconds`` (a server's retry-after)."""
        self.paused_until = max(self.paused_until, self.clock() + max(0.0, seconds))

    async def _acquire_rate(self, tokens: float, requests: int, gate: asyncio.Lock) -> None:
        async with gate:  # first come, first served: one waiter computes its wait at a time
            for k in range(requests):  # each request of the call paced on its own
                while True:
                    wait = self.paused_until - self.clock()
                    if self.requests is not None:
                        wait = max(wait, self.requests.wait_time(1))
                    if k == 0 and self.tokens is not None and tokens > 0:
                        wait = max(wait, self.tokens.wait_time(tokens))
                    if wait <= 0:
                        break
                    await self.sleep(wait)
                if self.requests is not None:
                    self.requests.take(1)
                if k == 0 and self.tokens is not None and tokens > 0:
                    self.tokens.take(tokens)

    @asynccontextmanager
    async def slot(self, tokens: float = 0, requests: int = 1) -> AsyncIterator[None]:
        """Held around one call of ``requests`` requests (``tokens`` in all): waits out a pause, the buckets
        and the concurrency cap, in that order of arrival."""
        sem, gate = self._primitives()
        held = await sem.acquire(requests) if sem is not None else 0
        try:
            await self._acquire_rate(tokens, max(1, requests), gate)
            token = _CHARGED.set(float(tokens))
            try:
                yield
            finally:
                _CHARGED.reset(token)
        finally:
            if sem is not None:
                sem.release(held)

    def refund(self, used_tokens: float) -> None:
        """Inside :meth:`slot`: the call used ``used_tokens``; give the rest of its charge back."""
        charged = _CHARGED.get()
        if self.tokens is not None and charged > used_tokens:
            self.tokens.give_back(charged - used_tokens)
            _CHARGED.set(used_tokens)
