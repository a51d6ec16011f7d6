"""crawlkit.errors: the hierarchy, the ``reason`` keys, and pickling across processes."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from crawlkit import errors
from crawlkit.errors import (
    Blocked,
    BodyTooLarge,
    BrowserCrashed,
    CloseSpider,
    CommitError,
    ConfigError,
    ConnectError,
    CrawlControl,
    CrawlkitError,
    DropItem,
    ExportError,
    FetchError,
    FetchTimeout,
    FrontierError,
    HTTPStatusError,
    IgnoreRequest,
    MiddlewareError,
    NotCached,
    NotTextError,
    ParseError,
    ParserCrashed,
    ParseTimeout,
    PipelineError,
    ProxyError,
    RedirectError,
    RedirectFiltered,
    RenderError,
    RenderTimeout,
    ResponseTooLarge,
    RetriesExhausted,
    SpiderError,
    StorageError,
    TLSError,
    TransportError,
    UndecodableBody,
)

URL = "http://example.com/page"
TRACEBACK = "Traceback (most recent call last):\n  File \"spider.py\", line 3, in parse\nKeyError: 'x'\n"

# Each exception, built as crawlkit code builds it, with the attributes it must carry.
CASES: list[tuple[BaseException, dict[str, Any]]] = [
    (CrawlkitError("root"), {}),
    (ConfigError("unknown setting 'x'"), {}),
    (SpiderError("no spider named 'x'"), {}),
    (FetchError("fetch failed", URL), {"url": URL, "reason": "fetch"}),
    (FetchError("no url"), {"url": "", "reason": "fetch"}),
    (TransportError("connection reset", URL), {"url": URL, "reason": "transport"}),
    (ProxyError("proxy refused", URL), {"url": URL, "reason": "proxy_error"}),
    (
        Blocked("blocked (cloudflare, HTTP 403)", URL, 403, "cloudflare"),
        {"url": URL, "reason": "blocked", "status": 403, "rule": "cloudflare"},
    ),
    (ConnectError("connection refused", URL), {"url": URL, "reason": "connect"}),
    (FetchTimeout("read timeout", url=URL), {"url": URL, "reason": "timeout"}),
    (RenderTimeout("the render passed its deadline of 30 s", URL), {"url": URL, "reason": "render_timeout"}),
    (BrowserCrashed("the browser died", URL), {"url": URL, "reason": "browser_crashed"}),
    (RenderError("actions[0]: no such element", URL), {"url": URL, "reason": "render"}),
    (ResponseTooLarge("body exceeds 10 bytes", URL), {"url": URL, "reason": "too_large"}),
    (MiddlewareError("middleware A.process_request raised", URL), {"url": URL, "reason": "middleware_error"}),
    (NotCached("not in the HTTP cache (offline)", URL), {"url": URL, "reason": "not_cached"}),
    (RedirectError("more than 20 redirects", URL), {"url": URL, "reason": "redirects"}),
    (
        RedirectFiltered("redirect not followed", URL, "offsite_redirect", "http://other.test/"),
        {"url": URL, "reason": "offsite_redirect", "target": "http://other.test/"},
    ),
    (TLSError("certificate verify failed", URL), {"url": URL, "reason": "tls"}),
    (NotTextError("response.text of a PDF"), {}),
    (
        HTTPStatusError("HTTP 503", URL, 503, 2.5),
        {"url": URL, "status": 503, "retry_after": 2.5, "reason": "http_503"},
    ),
    (
        HTTPStatusError("HTTP 404", url=URL, status=404),
        {"url": URL, "status": 404, "retry_after": None, "reason": "http_404"},
    ),
    (
        RetriesExhausted("gave up", URL, 4, "http_503"),
        {"url": URL, "attempts": 4, "last_reason": "http_503", "reason": "http_503"},
    ),
    (
        RetriesExhausted("gave up", url=URL, attempts=2),
        {"url": URL, "attempts": 2, "last_reason": "", "reason": "retries_exhausted"},
    ),
    (ParseError("KeyError: 'x'", URL, TRACEBACK), {"url": URL, "worker_traceback": TRACEBACK}),
    (BodyTooLarge("body inflated past 2000000 bytes", URL), {"url": URL, "reason": "too_large"}),
    (UndecodableBody("cannot decode body (gzip): bad header", URL), {"url": URL, "reason": "undecodable"}),
    (
        ParserCrashed("parser worker died (exit code 3)", URL, ""),
        {"url": URL, "worker_traceback": ""},
    ),
    (
        ParseTimeout("the callback ran longer than parse_timeout (60 s)", URL),
        {"url": URL, "reason": "parse_timeout"},
    ),
    (PipelineError("pipeline x raised"), {}),
    (StorageError("cannot write"), {}),
    (ExportError("disk full"), {}),
    (FrontierError("cannot write the frontier database: database or disk is full"), {}),
    (CommitError("worker w1 lost 2 of its leases before it could commit them"), {}),
    (CrawlControl("steer"), {}),
    (DropItem("no price"), {}),
    (IgnoreRequest("nothing here"), {}),
    (CloseSpider("enough_items"), {"reason": "enough_items"}),
    (CloseSpider(), {"reason": "close_spider"}),
    (CloseSpider("quota", 100), {"reason": "quota"}),
]


def _id(case: tuple[BaseException, dict[str, Any]]) -> str:
    exc, _ = case
    return f"{type(exc).__name__}{exc.args!r}"[:60]


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip_keeps_type_args_and_attributes(
    case: tuple[BaseException, dict[str, Any]], protocol: int
) -> None:
    exc, attrs = case
    copy = pickle.loads(pickle.dumps(exc, protocol=protocol))
    assert type(copy) is type(exc)
    assert copy.args == exc.args
    assert str(copy) == str(exc)
    for name, value in attrs.items():
        assert getattr(exc, name) == value, name
        assert getattr(copy, name) == value, name


def test_every_exported_exception_is_covered() -> None:
    covered = {type(exc).__name__ for exc, _ in CASES}
    assert covered <= set(errors.__all__)
    missing = set(errors.__all__) - covered
    assert not missing, f"add cases for {sorted(missing)} to CASES"


@pytest.mark.parametrize("name", sorted(errors.__all__))
def test_every_exported_exception_pickles_with_message_and_url(name: str) -> None:
    # Generic check, so an exception added later cannot break pickling unnoticed.
    cls = getattr(errors, name)
    exc = cls("message", URL) if issubclass(cls, FetchError | ParseError) else cls("message")
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is cls
    assert copy.args == exc.args
    assert str(copy) == str(exc)
    if isinstance(exc, FetchError | ParseError):
        assert copy.url == URL


@pytest.mark.parametrize(
    "exc",
    [
        FetchError("message only", URL),
        HTTPStatusError("HTTP 500 from server", URL, 500),
        RetriesExhausted("3 attempts failed", URL, 3, "timeout"),
        ParseError("ValueError: bad", URL, TRACEBACK),
        ParserCrashed("worker died", URL),
    ],
    ids=lambda e: type(e).__name__,
)
def test_str_is_the_message_not_the_args_tuple(exc: BaseException) -> None:
    assert str(exc) == exc.args[0]


def test_raised_and_caught_after_pickling() -> None:
    data = pickle.dumps(HTTPStatusError("HTTP 429", URL, 429, 30.0))
    with pytest.raises(FetchError) as info:
        raise pickle.loads(data)
    assert isinstance(info.value, HTTPStatusError)
    assert info.value.retry_after == 30.0


# -- the hierarchy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (ConfigError, CrawlkitError),
        (SpiderError, CrawlkitError),
        (FetchError, CrawlkitError),
        (TransportError, FetchError),
        (ConnectError, TransportError),
        (FetchTimeout, TransportError),
        (RenderTimeout, FetchTimeout),
        (BrowserCrashed, TransportError),
        (RenderError, FetchError),
        (ResponseTooLarge, FetchError),
        (RedirectError, FetchError),
        (HTTPStatusError, FetchError),
        (RetriesExhausted, FetchError),
        (MiddlewareError, FetchError),
        (NotCached, FetchError),
        (ParseError, CrawlkitError),
        (ParserCrashed, ParseError),
        (ParseTimeout, ParserCrashed),
        (PipelineError, CrawlkitError),
        (StorageError, CrawlkitError),
        (ExportError, StorageError),
        (FrontierError, StorageError),
        (CommitError, FrontierError),
        (DropItem, CrawlControl),
        (IgnoreRequest, CrawlControl),
        (CloseSpider, CrawlControl),
        (CrawlkitError, Exception),
        (CrawlControl, Exception),
    ],
)
def test_hierarchy(cls: type[BaseException], parent: type[BaseException]) -> None:
    assert issubclass(cls, parent)


def test_a_frontier_error_is_not_an_output_error() -> None:
    # Both stop the crawl (exit code 5), but only ExportError means the output file.
    assert not issubclass(FrontierError, ExportError)
    assert not issubclass(ExportError, FrontierError)


def test_the_module_docstring_draws_every_exception() -> None:
    tree = errors.__doc__ or ""
    for name in errors.__all__:
        assert f" {name}" in tree, name


@pytest.mark.parametrize("cls", [CrawlControl, DropItem, IgnoreRequest, CloseSpider])
def test_crawl_control_is_not_a_crawlkit_error(cls: type[BaseException]) -> None:
    assert not issubclass(cls, CrawlkitError)


@pytest.mark.parametrize(
    "cls", [ResponseTooLarge, RedirectError, HTTPStatusError, RetriesExhausted], ids=lambda c: c.__name__
)
def test_non_transport_fetch_errors(cls: type[BaseException]) -> None:
    assert not issubclass(cls, TransportError)


@pytest.mark.parametrize("cls", [ConfigError, SpiderError, ParseError, PipelineError, ExportError])
def test_non_fetch_errors(cls: type[BaseException]) -> None:
    assert not issubclass(cls, FetchError)


def test_failure_classes_all_derive_from_crawlkit_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, Exception)
        assert issubclass(cls, CrawlkitError) != issubclass(cls, CrawlControl), name


def test_reason_is_a_class_attribute_where_static() -> None:
    assert FetchError.reason == "fetch"
    assert TransportError.reason == "transport"
    assert ConnectError.reason == "connect"
    assert FetchTimeout.reason == "timeout"
    assert ResponseTooLarge.reason == "too_large"
    assert RedirectError.reason == "redirects"
