"""Running a spider callback on one response: the work a parser worker does.

This module runs in parser worker processes (and in the main process when ``parse_workers`` is
0). Its input and output are plain picklable data: a :class:`ParseTask` in, a
:class:`ParseOutcome` out.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import logging
import traceback
from collections.abc import Callable, Iterable
from types import GeneratorType
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from ..errors import (
    BodyTooLarge,
    CloseSpider,
    CrawlControl,
    IgnoreRequest,
    ParseError,
    ResponseTooLarge,
    SpiderError,
    UndecodableBody,
)
from ..guards import redact_text
from ..http import (
    MAX_URL_LENGTH,
    PREFIX_BYTES,
    Failure,
    OffsiteFilter,
    Request,
    Response,
    challenge_vendor,
    decode_body,
    is_http_url,
)
from ..spider import ItemValidator, Spider, detach_state, unknown_callback

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "PART_BYTES",
    "PART_ITEMS",
    "PART_REQUESTS",
    "CallbackRunner",
    "ParseOutcome",
    "ParseTask",
    "describe",
    "filter_reason",
    "item_to_json",
    "run_callback_as_worker",
]

log = logging.getLogger("crawlkit.parse")

# A callback's output leaves the worker in parts of at most this much (see CallbackRunner.spill):
# a page with a million links or a sitemap of a million URLs then never sits in one list, one
# pickle or one frame, and unpickling a part takes the event loop a few milliseconds.
PART_REQUESTS = 2_000
PART_ITEMS = 1_000
PART_BYTES = 4 << 20  # of items as JSON lines


class ParseTask(NamedTuple):
    """A fetched response on its way to a callback. The body is still Content-Encoded.

    With ``failure`` set, the request failed for good and goes to its errback instead: the
    response fields then hold the error response, or ``status`` 0 when there was none.
    """

    request: Request
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    content_encoding: str
    failure: BaseException | None = None
    # 1: look for a challenge page's markers first (the classifier left it here), and if found
    # report it in ``ParseOutcome.blocked`` without running the callback; 2: report, and run it.
    challenge: int = 0


@dataclasses.dataclass(slots=True)
class ParseOutcome:
    """What one callback produced.

    ``items`` are JSON lines (bytes) when ``items_are_json``, else the item objects themselves
    (when pipelines must see them). ``filtered`` counts requests dropped here, by reason.
    Items and requests yielded before an exception are kept; ``error`` tells of the exception.
    """

    items: list[Any]
    items_are_json: bool
    requests: list[Request]
    error: ParseError | None = None
    filtered: dict[str, int] | None = None
    close_reason: str | None = None
    unserializable: int = 0
    invalid: list[str] | None = None  # why each item that failed the spider's item_type did
    duplicates: int = 0  # links dropped by the parser worker as sent before (_sentlinks.py)
    # Requests (their URLs) and items that could not be pickled to the main process: each is
    # dropped alone, and the rest of the page goes on (the worker logs why).
    unsendable_requests: list[str] | None = None
    unsendable_items: int = 0
    blocked: str | None = None  # the vendor of the challenge page this was (ParseTask.challenge)

    def __reduce__(self) -> tuple[Any, ...]:
        # Every outcome crosses the pipe: as positional fields it pickles in about a third of the
        # time of the slot-by-slot default, and unpickles in half, with no field names in the frame.
        return (
            ParseOutcome,
            (
                self.items,
                self.items_are_json,
                self.requests,
                self.error,
                self.filtered,
                self.close_reason,
                self.unserializable,
                self.invalid,
                self.duplicates,
                self.unsendable_requests,
                self.unsendable_items,
                self.blocked,
            ),
        )

    def take_part(self) -> ParseOutcome:
        """What was collected so far, as a part of its own; this outcome keeps collecting."""
        part = ParseOutcome(
            self.items,
            self.items_are_json,
            self.requests,
            filtered=self.filtered,
            unserializable=self.unserializable,
            invalid=self.invalid,
        )
        self.items = []
        self.requests = []
        self.filtered = self.invalid = None
        self.unserializable = 0
        return part


def _json_default(obj: Any) -> Any:
    # pydantic models, attrs classes and sets: the item types orjson does not know natively.
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if hasattr(type(obj), "__attrs_attrs__"):
        import attrs

        return attrs.asdict(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def item_to_json(item: Any) -> bytes:
    """One JSONL line (newline included) for an item: dicts, dataclasses, datetimes, pydantic."""
    return orjson.dumps(item, default=_json_default, option=_OPTIONS)


def describe(item: Any) -> str:
    """A bounded summary of an item for a log line: its type, size and first keys, no values."""
    kind = type(item).__name__
    fields: list[Any]
    if isinstance(item, dict):
        fields = list(itertools.islice(item, 10))
    elif dataclasses.is_dataclass(item):
        fields = [f.name for f in dataclasses.fields(item)][:10]
    else:
        fields = list(getattr(type(item), "model_fields", None) or ())[:10]
    try:
        size = f", {len(item)} keys" if isinstance(item, dict) else ""
    except Exception:  # a dict subclass with a broken __len__
        size = ""
    names = ", ".join(_short(key) for key in fields)
    more = ", ..." if isinstance(item, dict) and len(fields) == 10 and len(item) > 10 else ""
    return f"a {kind}{size}: {names}{more}" if names else f"a {kind}{size}"


def _short(key: Any) -> str:
    if isinstance(key, str):
        return repr(key[:40] + "..." if len(key) > 40 else key)
    return f"<{type(key).__name__}>"  # a key's repr is foreign code: not called


def _is_item(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        or dataclasses.is_dataclass(obj)
        or hasattr(obj, "model_dump")
        or (hasattr(type(obj), "__attrs_attrs__"))
    )


class CallbackRunner:
    """Holds a spider instance and turns parse tasks into outcomes."""

    def __init__(self, spider: Spider, *, serialize_items: bool, max_response_size: int) -> None:
        self.spider = spider
        self.serialize_items = serialize_items
        self.max_response_size = max_response_size or (1 << 62)
        self.offsite = OffsiteFilter(getattr(spider, "allowed_domains", ()) or ())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._validator = ItemValidator(spider)
        self._callbacks_seen: set[str] = set()
        # Called with each part of a callback's output that reached PART_REQUESTS, PART_ITEMS or
        # PART_BYTES, before the callback goes on; the parser worker sends it there and then.
        self.spill: Callable[[ParseOutcome], None] | None = None

    def run(self, task: ParseTask) -> ParseOutcome:
        outcome = ParseOutcome([], self.serialize_items, [])
        request = task.request
        try:
            body = decode_body(task.body, task.content_encoding, self.max_response_size)
        except ResponseTooLarge as exc:
            outcome.error = BodyTooLarge(str(exc), task.url)
            return outcome
        except Exception as exc:  # corrupt gzip, unknown coding: the page is unusable, say why
            message = f"cannot decode body ({task.content_encoding}): {exc}"
            outcome.error = UndecodableBody(message, task.url)
            return outcome
        if task.challenge:
            outcome.blocked = challenge_vendor(body[:PREFIX_BYTES])
            if outcome.blocked is not None and task.challenge == 1:
                return outcome
        response = Response(task.url, task.status, task.headers, body, request)
        argument: Response | Failure = response
        kwargs = request.cb_kwargs
        if task.failure is None:
            name = request.callback or "parse"
        else:
            # The errback gets a Failure, and no cb_kwargs: Scrapy calls it so.
            name = request.errback or ""
            argument = Failure(request, task.failure, response if task.status else None)
            kwargs = {}
        callback = getattr(self.spider, name, None)
        if not callable(callback):
            outcome.error = ParseError(
                f"{unknown_callback(self.spider, name)}, named by the request for {request.url}", task.url
            )
            return outcome
        try:
            result = callback(argument, **kwargs)
            spill = self.spill
            if spill is None:
                for obj in self._iterate(result):
                    self._collect(obj, response, outcome)
            else:
                self._collect_in_parts(self._iterate(result), response, outcome, spill)
        except CloseSpider as exc:
            outcome.close_reason = exc.reason
        except IgnoreRequest:
            pass
        except CrawlControl as exc:
            outcome.error = ParseError(f"{type(exc).__name__} cannot be raised in a callback", task.url)
        except Exception as exc:
            # The text goes to logs: a URL or a header in it may carry credentials.
            kind = f"{type(self.spider).__name__}.{name} raised {type(exc).__name__}"
            outcome.error = ParseError(
                redact_text(f"{kind}: {exc}"), task.url, redact_text(traceback.format_exc()), kind
            )
        if response.invalid_links:  # links follow_all() could not make a URL of
            filtered = outcome.filtered
            if filtered is None:
                filtered = outcome.filtered = {}
            filtered["invalid_url"] = filtered.get("invalid_url", 0) + response.invalid_links
        return outcome

    def _collect_in_parts(
        self,
        objects: Iterable[Any],
        response: Response,
        outcome: ParseOutcome,
        spill: Callable[[ParseOutcome], None],
    ) -> None:
        held = 0  # items held in the outcome
        size = 0  # their bytes, as JSON lines
        collect = self._collect
        for obj in objects:
            collect(obj, response, outcome)
            items = outcome.items
            if len(items) != held:
                held = len(items)
                if outcome.items_are_json:
                    size += len(items[-1])
            if len(outcome.requests) >= PART_REQUESTS or held >= PART_ITEMS or size >= PART_BYTES:
                spill(outcome.take_part())
                held = size = 0

    def _iterate(self, result: Any) -> Iterable[Any]:
        if type(result) is GeneratorType:  # what most callbacks return: none of the checks below
            return result
        if result is None:
            return ()
        if isinstance(result, Request) or _is_item(result):
            return (result,)
        if inspect.isasyncgen(result) or inspect.iscoroutine(result):
            return self._drain_async(result)
        if isinstance(result, Iterable) and not isinstance(result, str | bytes):
            return result
        raise TypeError(f"a callback must yield or return items and Requests, not {type(result).__name__}")

    def _drain_async(self, result: Any) -> list[Any]:
        if self._loop is None:
            # Imported here: a parser worker of a spider with no async callback never needs
            # asyncio, and importing it slows the worker's start-up.
            import asyncio

            self._loop = asyncio.new_event_loop()
        if inspect.iscoroutine(result):
            value = self._loop.run_until_complete(result)
            return list(self._iterate(value))

        async def collect() -> list[Any]:
            return [obj async for obj in result]

        return self._loop.run_until_complete(collect())

    def _collect(self, obj: Any, response: Response, outcome: ParseOutcome) -> None:
        if isinstance(obj, Request):
            if obj.callback is not None and obj.callback not in self._callbacks_seen:
                # Caught here, where the callback that made the request is on the stack, rather
                # than when the response comes back, maybe hours later.
                if not callable(getattr(self.spider, obj.callback, None)):
                    raise SpiderError(f"{unknown_callback(self.spider, obj.callback)}; in {obj!r}")
                self._callbacks_seen.add(obj.callback)
            if obj.errback is not None and obj.errback not in self._callbacks_seen:
                if not callable(getattr(self.spider, obj.errback, None)):
                    raise SpiderError(f"{unknown_callback(self.spider, obj.errback)} (errback); in {obj!r}")
                self._callbacks_seen.add(obj.errback)
            reason = filter_reason(self.offsite, obj)
            if reason is not None:
                filtered = outcome.filtered
                if filtered is None:
                    filtered = outcome.filtered = {}
                filtered[reason] = filtered.get(reason, 0) + 1
                return
            obj.depth = response.request.depth + 1
            outcome.requests.append(obj)
        elif obj is None:
            return
        elif _is_item(obj):
            if self._validator:
                obj, invalid = self._validator.validate(obj)
                if invalid is not None:
                    log.error("invalid item from %s dropped: %s", response.url, invalid)
                    if outcome.invalid is None:
                        outcome.invalid = []
                    outcome.invalid.append(invalid)
                    return
            if not self.serialize_items:
                outcome.items.append(obj)
                return
            try:
                outcome.items.append(item_to_json(obj))
            except (TypeError, ValueError, RecursionError) as exc:
                # Never the item itself: its repr can be 50 MB, or recurse past Python's limit
                # and fail the callback, losing the items after this one.
                outcome.unserializable += 1
                reason = str(exc)[:200]
                log.error(
                    "item from %s cannot be written as JSON: %s (%s)", response.url, reason, describe(obj)
                )
        else:
            raise TypeError(
                f"callbacks yield items (dict, dataclass, attrs, pydantic) or Requests, "
                f"not {type(obj).__name__}: {obj!r:.200}"
            )


def run_callback_as_worker(spider: Spider, response: Response, request: Request) -> ParseOutcome:
    """Run ``request``'s callback on ``response`` as a parser worker would, items left as objects.

    For the tools that run one callback outside a crawl (``crawlkit parse``, ``crawlkit.testing``):
    ``spider.state`` is detached, as in a worker.
    """
    detach_state(spider)
    runner = CallbackRunner(spider, serialize_items=False, max_response_size=0)
    task = ParseTask(
        request, response.url, response.status, list(response.headers.items()), response.body, ""
    )
    return runner.run(task)


def filter_reason(offsite: OffsiteFilter | None, request: Request) -> str | None:
    """Why a request will not be fetched (None: it will be).

    Also computes the request's fingerprint, so that it is done here (in a parser worker, for
    links) and not in the event loop; a URL that cannot be parsed is filtered as invalid.
    """
    url = request.url
    if not is_http_url(url):
        return "scheme"
    if len(url) > MAX_URL_LENGTH:
        return "url_too_long"
    try:
        request.fingerprint  # noqa: B018 - computed and cached
        if offsite is not None and not offsite.allows(url):
            return "offsite"
    except ValueError:
        return "invalid_url"
    return None
