"""When and how long to wait before fetching a failed request again.

The policy is built from tenacity's strategies (retry predicates, jittered exponential wait), but
the engine does not sleep where the request failed: it hands the request back to the frontier with
a not-before time. A request backing off therefore holds no worker slot that other hosts could use.
"""

from __future__ import annotations

import email.utils
import time

import tenacity

from ..errors import FetchError, HTTPStatusError, RetriesExhausted, TransportError
from ..http import Request
from ..settings import Settings

__all__ = ["RetryPolicy", "parse_retry_after"]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class _WaitRetryAfter(tenacity.wait.wait_base):
    """The server's Retry-After when it sent one (capped), else the fallback wait."""

    def __init__(self, fallback: tenacity.wait.wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, HTTPStatusError) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return float(self.fallback(retry_state))


class RetryPolicy:
    """Decides, for a failed attempt, whether to retry and after how long."""

    def __init__(self, settings: Settings) -> None:
        codes = frozenset(settings.retry_http_codes)
        self.max_retries = settings.max_retries
        self._retry = tenacity.retry_if_exception_type(TransportError) | tenacity.retry_if_exception(
            lambda exc: isinstance(exc, HTTPStatusError) and exc.status in codes
        )
        self._wait = _WaitRetryAfter(
            # base * 2^(attempt-1), capped, plus up to one base of jitter so that
            # requests that failed together do not all come back together.
            tenacity.wait_exponential(multiplier=settings.retry_backoff_base, max=settings.retry_backoff_max)
            + tenacity.wait_random(0, settings.retry_backoff_base),
            cap=settings.retry_after_max,
        )

    def is_retryable(self, error: FetchError) -> bool:
        return bool(self._retry(self._state(error, 1)))

    def delay_for(self, request: Request, error: FetchError) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up.

        ``request.attempt`` counts the retries already made.
        """
        if request.dont_retry:
            return None
        limit = self.max_retries if request.max_retries is None else request.max_retries
        if request.attempt >= limit:
            return None
        state = self._state(error, request.attempt + 1)
        if not self._retry(state):
            return None
        return float(self._wait(state))

    def final_error(self, request: Request, error: FetchError) -> FetchError:
        """The error a request fails with, once ``delay_for`` has said no more attempts.

        A retryable error after at least one retry is the end of the retries: a
        :class:`RetriesExhausted` whose cause is that last error, under the same ``reason``. Any
        other error (not retryable, or retries turned off) is the request's failure as it is.
        """
        if request.attempt == 0 or not self.is_retryable(error):
            return error
        attempts = request.attempt + 1
        message = f"{error} (after {attempts} attempts)"
        exhausted = RetriesExhausted(message, request.url, attempts, error.reason)
        exhausted.__cause__ = error
        return exhausted

    @staticmethod
    def _state(error: FetchError, attempt: int) -> tenacity.RetryCallState:
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        state.set_exception((type(error), error, error.__traceback__))
        return state
