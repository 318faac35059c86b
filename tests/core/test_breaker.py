"""The model breaker: real connection failures (a closed port on 127.0.0.1) open it; a success after the cool-down
closes it. The API-level test against a model server stopped and restarted is tests/api/test_breaker_api.py."""

from __future__ import annotations

import time

import pytest

from core.breaker import ModelBreaker
from core.errors import ModelCircuitOpenError, ModelUnavailableError
from core.llm import ModelClient
from core.settings import BreakerSettings
from tests.api.conftest import closed_port_url


def _failing_call(client: ModelClient) -> object:
    return client.chat([{"role": "user", "content": "hi"}])


def test_opens_after_consecutive_failures_and_a_success_after_the_cooldown_closes_it() -> None:
    client = ModelClient(base_url=closed_port_url(), model="m", timeout_s=2)
    breaker = ModelBreaker(client.base_url, BreakerSettings(failures=2, cooldown_s=0.5))
    for _ in range(2):
        with pytest.raises(ModelUnavailableError):
            breaker.call(lambda: _failing_call(client))
    assert breaker.state == "open" and breaker.opened == 1
    assert 0 < breaker.retry_after_s() <= 0.5
    with pytest.raises(ModelCircuitOpenError) as refused:
        breaker.call(lambda: pytest.fail("an open breaker must not call the model"))
    assert refused.value.http_status == 503 and 0 < refused.value.retry_after_s <= 0.5
    time.sleep(0.6)
    assert breaker.retry_after_s() == 0
    assert breaker.call(lambda: "ok") == "ok"  # the probe
    assert breaker.state == "closed" and breaker.stats().consecutive_failures == 0


def test_a_failed_probe_opens_it_again_and_a_success_resets_the_count() -> None:
    client = ModelClient(base_url=closed_port_url(), model="m", timeout_s=2)
    breaker = ModelBreaker(client.base_url, BreakerSettings(failures=2, cooldown_s=0.3))
    with pytest.raises(ModelUnavailableError):
        breaker.call(lambda: _failing_call(client))
    assert breaker.call(lambda: 1) == 1
    with pytest.raises(ModelUnavailableError):
        breaker.call(lambda: _failing_call(client))
    assert breaker.state == "closed", "failures must be consecutive"
    with pytest.raises(ModelUnavailableError):
        breaker.call(lambda: _failing_call(client))
    assert breaker.state == "open"
    time.sleep(0.4)
    with pytest.raises(ModelUnavailableError):
        breaker.call(lambda: _failing_call(client))  # the probe fails
    assert breaker.state == "open" and breaker.opened == 2 and breaker.retry_after_s() > 0


def test_other_errors_do_not_count_and_a_disabled_breaker_never_opens() -> None:
    breaker = ModelBreaker("http://x", BreakerSettings(failures=1, cooldown_s=10))

    def boom() -> None:
        raise ValueError("not the endpoint's fault")

    with pytest.raises(ValueError):
        breaker.call(boom)
    assert breaker.state == "closed"
    off = ModelBreaker("http://x", BreakerSettings(enabled=False, failures=1))
    client = ModelClient(base_url=closed_port_url(), model="m", timeout_s=2)
    for _ in range(3):
        with pytest.raises(ModelUnavailableError):
            off.call(lambda: _failing_call(client))
    off.check()
    assert off.state == "closed"
