"""The ``Request`` and ``Response`` value types.

A ``Request`` crosses the process boundary between the event loop and the parser pool, so it holds
only plain picklable data: a callback is stored by method name and resolved on the spider instance
that lives in each worker process. A ``Response`` is built inside the worker from plain fields.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict, CIMultiDictProxy
from selectolax.lexbor import LexborHTMLParser, LexborNode

from ..errors import NotTextError
from ._charsets import decode
from ._content import is_binary_type
from ._curl import curl_to_request_fields
from ._encoding import detect_encoding
from ._links import IGNORED_EXTENSIONS, LinkFilter, Patterns, is_non_http_link
from ._parsel import build_selector, load_json
from ._render_plan import RenderPlan
from ._selectors import SelectorList, href_of, select, select_first
from ._urls import C0_AND_SPACE, fingerprint, join_plain, plain_base, resolve

if TYPE_CHECKING:
    from parsel import Selector
    from parsel import SelectorList as ParselSelectorList

__all__ = ["Request", "Response"]

CallbackRef = str | Callable[..., Any] | None

_BASE_TAG = re.compile(rb"<base", re.IGNORECASE)
_MISSING: Any = object()


def _callback_name(callback: CallbackRef) -> str | None:
    if callback is None or isinstance(callback, str):
        return callback
    name = getattr(callback, "__name__", None)
    if name is None or getattr(callback, "__self__", None) is None:
        raise TypeError(
            "callback must be a method of the spider (self.parse_item) or its name as a string, "
            f"not {callback!r}: callbacks run in parser worker processes and are looked up by name"
        )
    return str(name)


def _render_field(
    request: Request,
    render: bool | None,
    wait_for: str | None,
    actions: Sequence[Mapping[str, Any]] | None,
    screenshot: bool,
    pdf: bool,
    timeout: float | None,
) -> dict[str, Any] | bool | None:
    """What ``Request`` keeps of its render arguments: ``None`` (the spider's ``render``
    decides), ``False`` (never rendered), or the plan as plain data (rendered; ``{}``: the
    defaults). A bad plan raises here, in the callback that made the request."""
    planned = wait_for is not None or actions is not None or screenshot or pdf or timeout is not None
    if render is not None and not isinstance(render, bool):
        raise TypeError(f"Request render must be True, False or None, not {render!r}")
    if render is None and not planned:
        return None
    if render is False:
        if planned:
            raise ValueError(
                f"Request {request.url}: wait_for, actions, screenshot, pdf and render_timeout "
                "describe a render; they need render=True (or no render argument), not render=False"
            )
        return False
    if request.method != "GET" or request.body:
        raise ValueError(
            f"Request {request.url}: only a GET request with no body can be rendered "
            f"(a browser navigates to the page), not {request.method}"
        )
    try:
        plan = RenderPlan.parse(
            wait_for=wait_for, actions=actions, screenshot=screenshot, pdf=pdf, timeout=timeout
        )
    except ValueError as exc:
        raise ValueError(f"Request {request.url}: bad render plan: {exc}") from None
    return plan.to_data()


def _cookies(cookies: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(cookies, Mapping):
        raise TypeError(f"Request cookies must be a mapping of names to values, not {type(cookies).__name__}")
    return {str(name): str(value) for name, value in cookies.items()}


class Request:
    """A URL to fetch and what to do with its response.

    ``callback`` names a spider method (``self.parse_item`` or ``"parse_item"``); ``None``
    means ``parse``. ``cb_kwargs`` become keyword arguments of the callback; ``meta`` travels
    with the request and is readable as ``response.meta``. Higher ``priority`` is fetched
    sooner; within a priority, callbacks take turns (a pagination chain keeps pace with the
    items it finds). ``dont_filter`` skips deduplication. ``max_retries`` overrides the setting for this
    request; ``dont_retry`` turns retries off.

    ``errback`` names a spider method (like ``callback``) called in the parser worker with a
    ``Failure`` when the request fails for good: a download error or an HTTP error status, after
    its retries. ``cookies`` are sent with this request and kept in its cookie jar (the crawl's,
    or ``meta["cookiejar"]``'s) for the requests after it.

    ``render=True`` renders the page in headless Chromium (``None``: as the spider's ``render``
    says; ``False``: never). ``wait_for`` (a CSS selector, or ``"load"``, ``"domcontentloaded"``,
    ``"networkidle"``), ``actions`` (steps such as ``{"click": "button#more", "repeat": 5}``),
    ``screenshot``, ``pdf`` and ``render_timeout`` describe the render and imply ``render=True``;
    they are checked here (``RenderPlan``), and kept as plain data (``render_plan``).
    """

    __slots__ = (
        "_fingerprint",
        "_render",
        "attempt",
        "body",
        "callback",
        "cb_kwargs",
        "cookies",
        "depth",
        "dont_filter",
        "dont_retry",
        "errback",
        "headers",
        "max_retries",
        "meta",
        "method",
        "priority",
        "url",
    )

    def __init__(
        self,
        url: str,
        callback: CallbackRef = None,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
        cb_kwargs: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        priority: int = 0,
        dont_filter: bool = False,
        max_retries: int | None = None,
        dont_retry: bool = False,
        depth: int = 0,
        errback: CallbackRef = None,
        cookies: Mapping[str, str] | None = None,
        render: bool | None = None,
        wait_for: str | None = None,
        actions: Sequence[Mapping[str, Any]] | None = None,
        screenshot: bool = False,
        pdf: bool = False,
        render_timeout: float | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"Request url must be a str, not {type(url).__name__}")
        if "://" not in url and not url.startswith(("mailto:", "javascript:", "tel:", "data:")):
            raise ValueError(
                f"Request url must be absolute, got {url!r}; use response.follow() for relative links"
            )
        self.url = url
        self.method = method.upper()
        self.headers = dict(headers) if headers else None
        self.body = body.encode() if isinstance(body, str) else body
        self.callback = _callback_name(callback)
        self.cb_kwargs = cb_kwargs or {}
        self.meta = meta if meta is not None else {}
        self.priority = priority
        self.dont_filter = dont_filter
        self.depth = depth
        self.max_retries = max_retries
        self.dont_retry = dont_retry
        self.attempt = 0
        self._fingerprint: bytes | None = None
        self.errback = _callback_name(errback) if errback is not None else None
        self.cookies = _cookies(cookies) if cookies else None
        planned = wait_for is not None or actions is not None or screenshot or pdf
        if render is None and not planned and render_timeout is None:
            self._render = None  # what _render_field() says of a request that says nothing of rendering
        else:
            self._render = _render_field(self, render, wait_for, actions, screenshot, pdf, render_timeout)

    @property
    def render(self) -> bool | None:
        """True: rendered in the browser; False: never; None: as the spider's ``render`` says."""
        value = self._render
        return value if value is None or value is False else True

    @property
    def render_plan(self) -> dict[str, Any] | None:
        """The render's plan as plain data (``RenderPlan.to_data()``) when ``render`` is True."""
        value = self._render
        return value if isinstance(value, dict) else None

    def _render_arguments(self) -> dict[str, Any]:
        value = self._render
        if not isinstance(value, dict):
            return {} if value is None else {"render": False}
        arguments = {"render": True, **value}
        if "timeout" in arguments:
            arguments["render_timeout"] = arguments.pop("timeout")
        return arguments

    @property
    def fingerprint(self) -> bytes:
        """The dedup key: method, canonical URL and body digest."""
        fp = self._fingerprint
        if fp is None:
            fp = self._fingerprint = fingerprint(self.method, self.url, self.body)
        return fp

    def replace(self, **changes: Any) -> Request:
        """A copy with some fields changed (``url``, ``callback``, ``meta``, ...)."""
        fields: dict[str, Any] = {
            "url": self.url,
            "callback": self.callback,
            "method": self.method,
            "headers": self.headers,
            "body": self.body,
            "cb_kwargs": dict(self.cb_kwargs),
            "meta": dict(self.meta),
            "priority": self.priority,
            "dont_filter": self.dont_filter,
            "max_retries": self.max_retries,
            "dont_retry": self.dont_retry,
            "depth": self.depth,
            "errback": self.errback,
            "cookies": self.cookies,
        }
        if changes.get("render") is False:  # the plan goes with the render it described
            fields.update(render=False)
        else:
            fields.update(self._render_arguments())
        fields.update(changes)
        url = fields.pop("url")
        callback = fields.pop("callback")
        return type(self)(url, callback, **fields)

    @classmethod
    def from_curl(cls, curl_command: str, *, ignore_unknown_options: bool = True, **kwargs: Any) -> Request:
        """The request a ``curl`` command line sends (devtools' "Copy as cURL"): its method, URL,
        headers, cookies (``-b``), body (``-d``/``--data-raw``/``--data-binary``) and ``-u`` login.
        Options it does not know are ignored with a warning (an error if ``ignore_unknown_options``
        is false); ``kwargs`` are ``Request``'s and win over the command's."""
        fields = curl_to_request_fields(curl_command, ignore_unknown_options)
        fields.update(kwargs)
        url = fields.pop("url")
        return cls(url, **fields)

    def __reduce__(self) -> tuple[Any, ...]:
        # A flat tuple pickles far faster than the slot-by-slot default.
        fields = (
            self.url,
            self.method,
            self.headers,
            self.body,
            self.callback,
            self.cb_kwargs,
            self.meta,
            self.priority,
            self.dont_filter,
            self.depth,
            self.max_retries,
            self.dont_retry,
            self.attempt,
            self._fingerprint,
        )
        # FormRequest and JsonRequest come back as themselves; a plain Request's pickle stays as
        # it was, so stored jobs resume alike (and so do errback, cookies and the render, added
        # at the end only when set).
        extras = self._pickled_extras()
        return (_rebuild_request, fields + extras if extras else fields)

    def _pickled_extras(self) -> tuple[Any, ...]:
        if self._render is None and self.errback is None and self.cookies is None:
            return () if type(self) is Request else (type(self),)  # most requests: nothing more
        cls = None if type(self) is Request else type(self)
        if self._render is not None:
            return (cls, self.errback, self.cookies, self._render)
        return (cls, self.errback, self.cookies)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


def _rebuild_request(
    url: str,
    method: str,
    headers: dict[str, str] | None,
    body: bytes,
    callback: str | None,
    cb_kwargs: dict[str, Any],
    meta: dict[str, Any],
    priority: int,
    dont_filter: bool,
    depth: int,
    max_retries: int | None,
    dont_retry: bool,
    attempt: int,
    fp: bytes | None,
    cls: type[Request] | None = None,
    errback: str | None = None,
    cookies: dict[str, str] | None = None,
    render: dict[str, Any] | bool | None = None,
) -> Request:
    r = Request.__new__(cls or Request)
    r.errback = errback
    r.cookies = cookies
    r._render = render
    r.url = url
    r.method = method
    r.headers = headers
    r.body = body
    r.callback = callback
    r.cb_kwargs = cb_kwargs
    r.meta = meta
    r.priority = priority
    r.dont_filter = dont_filter
    r.depth = depth
    r.max_retries = max_retries
    r.dont_retry = dont_retry
    r.attempt = attempt
    r._fingerprint = fp
    return r


class Response:
    """A fetched page, as a spider callback sees it.

    ``body`` is the decompressed body; ``text`` is it decoded (BOM, then HTTP charset, then
    ``<meta charset>``, then UTF-8 with replacement characters). ``css()`` and ``css_first()``
    select with selectolax (Lexbor) and also answer parsel's ``::text``, ``::attr()``, ``get()``;
    ``xpath()`` and ``selector`` are parsel's own, built on first use. ``invalid_links`` counts
    the links ``follow_all()`` skipped because no valid URL could be made of them.
    """

    __slots__ = ("__dict__", "body", "headers", "invalid_links", "request", "status", "url")

    def __init__(
        self,
        url: str,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
        request: Request,
    ) -> None:
        self.url = url
        self.status = status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(headers))
        self.body = body
        self.request = request
        self.invalid_links = 0

    @property
    def meta(self) -> dict[str, Any]:
        """The ``meta`` of the request that produced this response."""
        return self.request.meta

    @cached_property
    def encoding(self) -> str:
        return detect_encoding(self.headers.get("Content-Type", ""), self.body)

    def _require_text(self, what: str) -> None:
        content_type = self.headers.get("Content-Type")
        if is_binary_type(content_type):
            raise NotTextError(
                f"response.{what} of {self.url}: it is {content_type}, not text; use response.body"
            )

    @cached_property
    def text(self) -> str:
        """The body decoded; raises ``NotTextError`` for a binary Content-Type (an image, a PDF)."""
        self._require_text("text")
        text = decode(self.body, self.encoding)
        return text[1:] if text.startswith("\ufeff") else text  # a byte order mark is not text

    @cached_property
    def tree(self) -> LexborHTMLParser:
        """The parsed document (parsed on first use); ``NotTextError`` for a binary response."""
        self._require_text("css()")
        if self.encoding == "utf-8":
            # Lexbor reads bytes as UTF-8; handing them over skips a decode and a copy. It would
            # read a byte order mark as text, though, and move the whole <head> into <body>.
            body = self.body
            return LexborHTMLParser(body[3:] if body.startswith(codecs.BOM_UTF8) else body)
        return LexborHTMLParser(self.text)

    def css(self, selector: str) -> SelectorList[Any]:
        """Every match of a CSS selector: nodes, or strings for ``::text`` / ``::attr(name)``."""
        return select(self.tree, selector, "css")

    def css_first(self, selector: str, default: Any = None) -> Any:
        """The first match of a CSS selector (a node, or a string for a pseudo-element), or ``default``."""
        return select_first(self.tree, selector, default, "css_first")

    @cached_property
    def selector(self) -> Selector:
        """A parsel ``Selector`` over the page (lxml, built on first use) for XPath and parsel's CSS."""
        self._require_text("selector")
        base = str(self._base_url) if self._base_node is not None else self.url
        return build_selector(self.text, self.headers.get("Content-Type", ""), base)

    def xpath(self, query: str, **variables: Any) -> ParselSelectorList[Selector]:
        """Every match of an XPath expression, as parsel returns it (``.get()``, ``.getall()``...)."""
        return self.selector.xpath(query, **variables)

    def json(self) -> Any:
        """The body parsed as JSON; a ``ValueError`` naming the URL and Content-Type if it is not."""
        cached = self.__dict__.get("_json", _MISSING)
        if cached is _MISSING:
            cached = self.__dict__["_json"] = load_json(
                self.body, self.encoding, self.url, self.headers.get("Content-Type")
            )
        return cached

    def urljoin(self, url: str) -> str:
        """``url`` made absolute against this page (its ``<base href>`` if it has one).

        Resolved as browsers resolve links (the WHATWG URL Standard); ``ValueError`` for a link
        that leads nowhere in a browser either (``http://exa mple.com/``, ``https://[::1``).
        """
        href = url.strip(C0_AND_SPACE)
        # Most links are plain paths on a plain page URL: joined as text, no parse needed.
        base = self._plain_base
        if base is not None:
            joined = join_plain(base, href)
            if joined is not None:
                return joined
        return resolve(self._base_url, href)

    @cached_property
    def _plain_base(self) -> tuple[str, str] | None:
        return plain_base(self._base_url if self._base_node is not None else self.url)

    @cached_property
    def _base_node(self) -> LexborNode | None:
        if _BASE_TAG.search(self.body, 0, 8192) is None:
            return None
        node: LexborNode | None = self.tree.css_first("base[href]")
        return node

    @cached_property
    def _base_url(self) -> str:
        base = self.url
        node = self._base_node
        if node is not None:
            # A <base href> that is no URL is ignored, as browsers ignore it.
            with contextlib.suppress(ValueError):
                base = resolve(base, node.attributes.get("href") or "")
        return base

    def follow(self, url: object, callback: CallbackRef = None, **kwargs: Any) -> Request:
        """A request for a link on this page: a URL (relative or absolute), an ``<a>`` node, or
        a result of ``css()``/``xpath()`` (an element's ``href``, or a ``::attr(href)`` string)."""
        href = href_of(url, "follow")
        if href is None:
            raise ValueError(f"{url!r:.80} has no href attribute")
        return Request(self.urljoin(href), callback, **kwargs)

    def follow_all(
        self,
        urls: Iterable[object] | None = None,
        callback: CallbackRef = None,
        *,
        css: str | None = None,
        xpath: str | None = None,
        allow: Patterns = None,
        deny: Patterns = None,
        deny_extensions: Iterable[str] | None = IGNORED_EXTENSIONS,
        **kwargs: Any,
    ) -> Iterator[Request]:
        """Requests for many links: given URLs, nodes or selectors, or every ``href`` matched by
        ``css`` or ``xpath`` (``css="a.next"``, ``css="a::attr(href)"``, ``xpath="//a[@rel='next']"``).

        ``javascript:``, ``mailto:``, ``tel:`` and ``data:`` links are skipped, and so are links
        to files by extension (``deny_extensions``: ``links.IGNORED_EXTENSIONS`` by default,
        images, archives, PDFs, media, fonts, office documents; ``()`` to keep them all).
        ``allow`` and ``deny`` are regular expressions (one, or a list) searched in the absolute
        URL: a link is followed if it matches an ``allow`` (or none is given) and no ``deny``.
        """
        if (urls is not None) + (css is not None) + (xpath is not None) != 1:
            raise ValueError("follow_all() takes either urls or css= or xpath=: exactly one of them")
        targets: Iterable[object]
        if css is not None:
            targets = self.css(css)
        elif xpath is not None:
            targets = self.xpath(xpath)
        else:
            targets = urls or ()
        link_filter = LinkFilter(allow, deny, deny_extensions)
        check = None if link_filter.trivial else link_filter.allows
        for target in targets:
            href = target if type(target) is str else href_of(target, "follow_all")
            # Every non-HTTP scheme has a ':', and most links have none: no need to look closer.
            if href is None or (":" in href and is_non_http_link(href)):
                continue
            try:
                url = self.urljoin(href)
            except ValueError:
                # A link no browser could follow (a bad port, a broken IPv6 literal): counted and
                # skipped, so that it costs the page none of its other links and items.
                self.invalid_links += 1
                continue
            if check is not None and not check(url):
                continue
            try:
                request = Request(url, callback, **kwargs)
            except ValueError:
                continue  # not "://": a link to something other than a page (about:blank)
            yield request

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url}>"
