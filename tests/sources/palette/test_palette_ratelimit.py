import threading

import pytest

from costwarden.sources.palette.ratelimit import PrefixRateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _send_times(bucket: TokenBucket, clock: FakeClock, calls: int) -> list[float]:
    """Reserve ``calls`` tokens back to back and return when each call may be sent."""
    times = []
    for _ in range(calls):
        times.append(clock.now + bucket.reserve())
    return times


def _max_in_window(times: list[float], width: float) -> int:
    ordered = sorted(times)
    return max(sum(1 for other in ordered if start <= other < start + width) for start in ordered)


def test_bucket_grants_burst_at_once():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=8, burst=5, clock=clock)

    delays = [bucket.reserve() for _ in range(7)]

    assert delays[:5] == [0.0] * 5
    assert delays[5] == pytest.approx(1 / 8)
    assert delays[6] == pytest.approx(2 / 8)


def test_bucket_refills_with_time():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=8, burst=5, clock=clock)
    for _ in range(5):
        bucket.reserve()

    clock.now += 0.5

    assert [bucket.reserve() for _ in range(4)] == [0.0] * 4
    assert bucket.reserve() > 0


def test_bucket_refill_capped_at_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=8, burst=5, clock=clock)

    clock.now += 3600

    delays = [bucket.reserve() for _ in range(6)]
    assert delays.count(0.0) == 5


@pytest.mark.parametrize(("rate", "burst"), [(8.0, 5), (10.0, 5), (2.5, 1), (8.0, 3)])
def test_bucket_rate_holds_in_every_window(rate, burst):
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=rate, burst=burst, clock=clock)

    times = _send_times(bucket, clock, 200)

    assert _max_in_window(times, 1.0) <= burst + rate
    span = max(times) - min(times)
    assert (len(times) - burst) / span <= rate + 1e-9


def test_bucket_shared_by_threads_keeps_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=8, burst=5, clock=clock)
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            send_at = clock.now + bucket.reserve()
            with lock:
                times.append(send_at)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(times) == 400
    assert _max_in_window(times, 1.0) <= 5 + 8


def test_bucket_rejects_bad_settings():
    with pytest.raises(ValueError, match="rate_per_second"):
        TokenBucket(rate_per_second=0, burst=5)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate_per_second=1, burst=0)


def test_limiter_matches_prefix_and_subpaths():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=1, burst=1, clock=clock)
    limiter = PrefixRateLimiter({"/v1/dashboard": bucket})

    assert limiter.bucket_for("/v1/dashboard") is bucket
    assert limiter.bucket_for("/v1/dashboard/spectroclusters/cost") is bucket
    assert limiter.bucket_for("/v1/dashboardx") is None
    assert limiter.bucket_for("/v1/spectroclusters/abc") is None


def test_limiter_leaves_other_paths_alone():
    clock = FakeClock()
    limiter = PrefixRateLimiter({"/v1/dashboard": TokenBucket(1, 1, clock)})

    assert [limiter.reserve("/v1/users/info") for _ in range(50)] == [0.0] * 50
    assert limiter.reserve("/v1/dashboard/projects/metadata") == 0.0
    assert limiter.reserve("/v1/dashboard/projects/metadata") == pytest.approx(1.0)


def test_limiter_prefers_longest_prefix():
    clock = FakeClock()
    outer = TokenBucket(1, 1, clock)
    inner = TokenBucket(1, 1, clock)
    limiter = PrefixRateLimiter({"/v1": outer, "/v1/dashboard/": inner})

    assert limiter.bucket_for("/v1/dashboard/spectroclusters/search") is inner
    assert limiter.bucket_for("/v1/users/info") is outer
