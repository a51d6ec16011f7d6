"""fetch's RetryPolicy: what a request fails with once its retries run out."""

from __future__ import annotations

from crawlkit import Request, RetriesExhausted, Settings
from crawlkit.errors import ConnectError, FetchError, HTTPStatusError
from crawlkit.fetch import RetryPolicy

URL = "http://example.com/page"


def policy(**settings: object) -> RetryPolicy:
    return RetryPolicy(Settings(**settings))  # type: ignore[arg-type]


def request_after(retries: int) -> Request:
    request = Request(URL)
    request.attempt = retries
    return request


def test_the_last_retryable_error_becomes_retries_exhausted_with_it_as_cause() -> None:
    retry = policy(max_retries=2)
    request = request_after(2)
    last = HTTPStatusError("HTTP 503", URL, 503)
    assert retry.delay_for(request, last) is None
    failure = retry.final_error(request, last)
    assert isinstance(failure, RetriesExhausted)
    assert failure.__cause__ is last
    assert (failure.reason, failure.last_reason, failure.attempts) == ("http_503", "http_503", 3)
    assert failure.url == URL
    assert str(failure) == "HTTP 503 (after 3 attempts)"


def test_a_transport_error_counts_under_its_own_reason_too() -> None:
    last = ConnectError("cannot connect", URL)
    failure = policy(max_retries=1).final_error(request_after(1), last)
    assert isinstance(failure, RetriesExhausted) and failure.reason == "connect"


def test_an_error_that_is_not_retried_is_the_failure_itself() -> None:
    last = HTTPStatusError("HTTP 404", URL, 404)
    assert policy().final_error(request_after(1), last) is last  # a 404 after a retried 503


def test_with_no_retry_made_the_error_is_the_failure_itself() -> None:
    last: FetchError = ConnectError("cannot connect", URL)
    assert policy(max_retries=0).final_error(request_after(0), last) is last
