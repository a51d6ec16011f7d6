"""``FormRequest`` and ``JsonRequest``: requests that carry form fields or a JSON document.

Both are ``Request`` subclasses with no fields of their own: what they add is worked out once, in
the constructor, into the method, URL, headers and body. So they pickle, cross to the parser
workers and wait in the SQLite and Redis frontiers as any request does, and come back as
themselves (``Request.__reduce__`` keeps the class).
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from ._forms import FormValues, Pairs, form_submission, pairs_of
from ._message import CallbackRef, Request

if TYPE_CHECKING:
    from ._message import Response

__all__ = ["FormRequest", "JsonRequest"]

_FORM_TYPE = "application/x-www-form-urlencoded"
_JSON_ACCEPT = "application/json, text/javascript, */*; q=0.01"


def _with_default(headers: Mapping[str, str] | None, name: str, value: str) -> dict[str, str]:
    out = dict(headers or {})
    if not any(key.lower() == name.lower() for key in out):
        out[name] = value
    return out


def _urlencode(pairs: Pairs, encoding: str) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "utf-8"
    flat = [
        (key, value)
        for key, values in pairs
        for value in (values if isinstance(values, list | tuple) else [values])
    ]
    # Characters the page's encoding cannot hold are sent as &#NNNN; as browsers send them.
    return urlencode(flat, encoding=encoding, errors="xmlcharrefreplace")


class FormRequest(Request):
    """A request that sends form fields: ``FormRequest(url, formdata={"q": "shoes"})``.

    ``formdata`` is a dict or a list of (name, value) pairs (a value may be a list: the name is
    sent once per value). With form data and no ``method``, the request is a POST with a
    urlencoded body; with ``method="GET"`` the fields become the URL's query instead.
    ``encoding`` is how non-ASCII characters are encoded (UTF-8 unless the page says otherwise).
    Use ``FormRequest.from_response()`` to submit a form found on a page.
    """

    __slots__ = ()

    valid_form_methods: ClassVar[tuple[str, ...]] = ("GET", "POST")

    def __init__(
        self,
        url: str,
        callback: CallbackRef = None,
        *,
        formdata: FormValues = None,
        encoding: str = "utf-8",
        method: str | None = None,
        **kwargs: Any,
    ) -> None:
        pairs = pairs_of(formdata)
        if method is None:
            method = "POST" if pairs else "GET"
        super().__init__(url, callback, method=method, **kwargs)
        if not pairs:
            return
        query = _urlencode(pairs, encoding)
        if self.method == "POST":
            self.headers = _with_default(self.headers, "Content-Type", _FORM_TYPE)
            self.body = query.encode("ascii")
        else:
            # A GET form replaces the action's query, as browsers submit it.
            self.url = urlunsplit(urlsplit(self.url)._replace(query=query))

    @classmethod
    def from_response(
        cls,
        response: Response,
        callback: CallbackRef = None,
        *,
        formname: str | None = None,
        formid: str | None = None,
        formnumber: int = 0,
        formxpath: str | None = None,
        formcss: str | None = None,
        formdata: FormValues = None,
        clickdata: Mapping[str, str | int] | None = None,
        dont_click: bool = False,
        url: str | None = None,
        method: str | None = None,
        **kwargs: Any,
    ) -> FormRequest:
        """The request a browser sends when the user submits a form of ``response``.

        The form is the first one, or the one named by ``formname`` (its ``name``), ``formid``,
        ``formxpath`` or ``formcss`` (an element in it will do), or ``formnumber``. Its fields are
        sent as the page sets them (hidden CSRF tokens included), with ``formdata`` overriding
        or adding fields (``None`` drops one) and the first submit button clicked (``clickdata``
        picks another by attributes or ``{"nr": index}``; ``dont_click=True`` clicks none). The
        request goes to the form's ``action`` resolved against the page (and its ``<base href>``),
        by its method (GET or POST); ``url`` and ``method`` override them. Other keyword
        arguments are ``Request``'s (``headers``, ``meta``, ``cb_kwargs``...).
        """
        action, form_method, pairs = form_submission(
            response,
            formname=formname,
            formid=formid,
            formnumber=formnumber,
            formxpath=formxpath,
            formcss=formcss,
            formdata=formdata,
            clickdata=clickdata,
            dont_click=dont_click,
        )
        if url is not None:
            target = response.urljoin(url)
        else:
            # No action (or an empty one) submits to the page itself, as browsers do.
            target = response.urljoin(action) if action is not None else response.url
        chosen = (method or form_method).upper()
        if chosen not in cls.valid_form_methods:
            chosen = "GET"
        kwargs.setdefault("encoding", response.encoding)
        return cls(target, callback, formdata=pairs, method=chosen, **kwargs)


class JsonRequest(Request):
    """A request that sends a JSON document: ``JsonRequest(url, data={"page": 2})``.

    With ``data`` (and no ``body``) the request is a POST of ``data`` as JSON (keys sorted, so
    equal documents are the same request to deduplication); without it, a GET. Either way it
    asks for JSON (``Accept``) and a body is labelled ``Content-Type: application/json``. Read
    the answer with ``response.json()``.
    """

    __slots__ = ()

    def __init__(
        self,
        url: str,
        callback: CallbackRef = None,
        *,
        data: Any = None,
        method: str | None = None,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if data is not None and not body:
            body = orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        if method is None:
            method = "POST" if body else "GET"
        merged = _with_default(headers, "Accept", _JSON_ACCEPT)
        if body:
            merged = _with_default(merged, "Content-Type", "application/json")
        super().__init__(url, callback, method=method, body=body, headers=merged, **kwargs)
