"""The replica pool's choices: least loaded first, ties rotated, failing endpoints ejected for a cool-down and taken
back after it; one endpoint is never ejected. A clock is injected, so cool-downs take no time."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.replicas import ReplicaPool, pinned, pinned_endpoint, split_urls

A, B, C = "http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1", "http://127.0.0.1:3/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_split_urls_keeps_order_and_drops_blanks_and_repeats() -> None:
    assert split_urls(A) == [A]
    assert split_urls(f" {A} , {B},,{A} ") == [A, B]
    with pytest.raises(ConfigurationError, match="names no endpoint"):
        split_urls(" , ")


def test_one_at_a_time_requests_alternate() -> None:
    pool = ReplicaPool([A, B, C])
    order = []
    for _ in range(6):
        replica = pool.acquire()
        assert replica is not None
        order.append(replica.url)
        pool.release(replica)
    assert order == [A, B, C, A, B, C]
    assert [r.served for r in pool.replicas] == [2, 2, 2]


def test_the_least_loaded_endpoint_is_chosen() -> None:
    pool = ReplicaPool([A, B])
    first, second, third = pool.acquire(), pool.acquire(), pool.acquire()
    assert first is not None and second is not None and third is not None
    assert (first.url, second.url) == (A, B)
    pool.release(first)  # A: 1 in flight (third), B: 1 in flight; release B's and B is least loaded
    pool.release(second)
    fourth = pool.acquire()
    assert fourth is not None and fourth.url == B and third.url == A
    assert [r.in_flight for r in pool.replicas] == [1, 1]


def test_a_failing_endpoint_is_ejected_then_taken_back_after_the_cooldown() -> None:
    clock = Clock()
    pool = ReplicaPool([A, B], cooldown_s=30.0, clock=clock)
    replica = pool.acquire()
    assert replica is not None and replica.url == A
    pool.release(replica, "APIConnectionError")
    assert pool.ejected() == [A]
    for _ in range(4):  # only B while A cools down
        other = pool.acquire()
        assert other is not None and other.url == B
        pool.release(other)
    clock.now += 30.0
    assert pool.ejected() == []
    urls = []
    for _ in range(2):
        back = pool.acquire()
        assert back is not None
        urls.append(back.url)
        pool.release(back)
    assert sorted(urls) == [A, B]
    assert pool.replicas[0].failures == 1 and pool.replicas[0].last_error == "APIConnectionError"


def test_ejected_endpoints_are_still_tried_when_all_are_ejected_soonest_back_first() -> None:
    clock = Clock()
    pool = ReplicaPool([A, B], cooldown_s=30.0, clock=clock)
    a = pool.acquire()
    assert a is not None
    pool.release(a, "HTTP 503")
    clock.now += 10
    b = pool.acquire()
    assert b is not None and b.url == B
    pool.release(b, "HTTP 503")
    assert [r.url for r in pool.order()] == [A, B]  # A is back 10 s sooner
    assert pool.acquire(exclude={A, B}) is None
    retry = pool.acquire()
    assert retry is not None and retry.url == A
    pool.release(retry)  # it served: it is healthy again at once
    assert pool.ejected() == [B]


def test_a_single_endpoint_is_never_ejected() -> None:
    pool = ReplicaPool([A])
    replica = pool.acquire()
    assert replica is not None
    pool.release(replica, "APIConnectionError")
    assert pool.ejected() == []
    assert pool.acquire(exclude={A}) is None


def test_pinned_work_goes_to_its_endpoint_while_healthy_then_to_the_least_loaded() -> None:
    clock = Clock()
    pool = ReplicaPool([A, B, C], cooldown_s=30, clock=clock)
    busy = pool.acquire()  # A: one request in flight
    assert busy is not None and busy.url == A
    with pinned(C):
        assert pinned_endpoint() == C
        chosen = [pool.acquire() for _ in range(3)]
        assert [r.url for r in chosen if r] == [C, C, C], "pinned, though B is less loaded"
        pool.release(chosen[0])
        pool.release(chosen[1])
        pool.release(chosen[2], "HTTP 500")  # C fails: ejected
        moved = pool.acquire()
        assert moved is not None and moved.url == B, "C ejected: the least loaded healthy one"
        pool.release(moved)
        clock.now += 31
        back = pool.acquire()
        assert back is not None and back.url == C, "back from its cool-down: pinned again"
    assert pinned_endpoint() is None


def test_an_endpoint_failing_each_time_it_comes_back_is_ejected_twice_as_long_up_to_the_maximum() -> None:
    # a killed server: each try after a cool-down is an answer that fails there first, so the tries thin out
    clock = Clock()
    pool = ReplicaPool([A, B], cooldown_s=30.0, max_cooldown_s=100.0, clock=clock)
    cooldowns = []
    for _ in range(4):
        pool.replicas[1].in_flight = 0
        replica = pool.acquire(exclude={B})
        assert replica is not None and replica.url == A
        pool.release(replica, "APIConnectionError")
        cooldowns.append(pool.replicas[0].ejected_until - clock.now)
        clock.now = pool.replicas[0].ejected_until  # back: the next request tries it again
        assert pool.ejected() == []
    assert cooldowns == [30.0, 60.0, 100.0, 100.0]
    back = pool.acquire(exclude={B})
    assert back is not None
    pool.release(back)  # it served: the next failure is a first ejection again
    again = pool.acquire(exclude={B})
    assert again is not None
    pool.release(again, "HTTP 502")
    assert pool.replicas[0].ejected_until - clock.now == 30.0 and pool.replicas[0].ejections == 1


def test_requests_failing_together_on_one_endpoint_are_one_ejection() -> None:
    clock = Clock()
    pool = ReplicaPool([A, B], cooldown_s=30.0, clock=clock)
    start = clock.now
    held = [pool.acquire(exclude={B}) for _ in range(3)]  # three answers on A when it dies
    for replica in held:
        assert replica is not None
        clock.now += 1.0
        pool.release(replica, "APIConnectionError")
    a = pool.replicas[0]
    assert a.ejections == 1 and a.failures == 3
    assert a.ejected_until == clock.now + 30.0 == start + 3.0 + 30.0  # 30 s from the last: not doubled
