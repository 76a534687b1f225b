"""The per-teacher rate limiter on a virtual clock (no real waiting, no timing assertions)."""

import asyncio

import pytest

from distilloop.annotators.ratelimit import RateLimiter, TokenBucket


class VirtualClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.now += seconds
        await asyncio.sleep(0)


def start_times(limiter, clock, n, tokens=0):
    starts = []

    async def one():
        async with limiter.slot(tokens):
            starts.append(clock.now)

    async def main():
        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())
    return starts


def test_requests_per_minute_paces_calls_after_a_one_second_burst():
    clock = VirtualClock()
    limiter = RateLimiter(requests_per_minute=120, clock=clock, sleep=clock.sleep)  # 2 a second
    starts = start_times(limiter, clock, 10)
    assert starts[:2] == [0.0, 0.0]  # burst of one second's worth
    gaps = [b - a for a, b in zip(starts[2:], starts[3:])]
    assert all(g == pytest.approx(0.5) for g in gaps)
    assert starts[-1] == pytest.approx(4.0)  # 10 calls: 2 at once, then 8 at 2 a second


def test_tokens_per_minute_paces_by_tokens_and_refund_gives_unused_tokens_back():
    clock = VirtualClock()
    limiter = RateLimiter(tokens_per_minute=6000, clock=clock, sleep=clock.sleep)  # 100 tokens a second
    starts = start_times(limiter, clock, 4, tokens=100)
    assert starts == pytest.approx([0.0, 1.0, 2.0, 3.0])

    clock2 = VirtualClock()
    lim2 = RateLimiter(tokens_per_minute=6000, clock=clock2, sleep=clock2.sleep)
    seen = []

    async def used_little():
        async with lim2.slot(100):
            lim2.refund(10)  # the provider reported 10 tokens: 90 go back
        async with lim2.slot(100):
            seen.append(clock2.now)

    asyncio.run(used_little())
    assert seen[0] == pytest.approx(0.1)


def test_max_concurrency_caps_calls_in_flight():
    limiter = RateLimiter(max_concurrency=3)
    in_flight, peak = 0, 0

    async def one():
        nonlocal in_flight, peak
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            in_flight -= 1

    async def main():
        await asyncio.gather(*(one() for _ in range(12)))

    asyncio.run(main())
    assert peak == 3


def test_retry_after_pauses_every_new_call():
    clock = VirtualClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.pause(2.5)
    assert start_times(limiter, clock, 2) == [2.5, 2.5]


def test_a_call_larger_than_the_burst_waits_for_a_full_bucket_then_goes_into_debt():
    clock = VirtualClock()
    b = TokenBucket(600, clock=clock)  # 10 a second, capacity 10
    assert b.wait_time(50) == 0.0
    b.take(50)
    assert b.wait_time(1) == pytest.approx(4.1)


def test_the_limiter_works_across_event_loops():
    limiter = RateLimiter(max_concurrency=2)

    async def one():
        async with limiter.slot():
            return 1

    assert asyncio.run(one()) == 1 and asyncio.run(one()) == 1


@pytest.mark.parametrize("kw", [{"max_concurrency": 0}, {"requests_per_minute": -5}, {"tokens_per_minute": True}])
def test_bad_limits_are_refused(kw):
    with pytest.raises(ValueError):
        RateLimiter(**kw)
