"""crawlkit.http: the Request and Response value types."""

from __future__ import annotations

import codecs
import pickle
from typing import Any

import pytest
from selectolax.lexbor import LexborNode

from crawlkit.http import Request, Response, _rebuild_request
from crawlkit.http._urls import fingerprint
from crawlkit.spider import Spider


class ExampleSpider(Spider):
    name = "example"

    def parse(self, response: Response) -> None:
        return None

    def parse_item(self, response: Response) -> None:
        return None


def module_level_function(response: Response) -> None:
    return None


# -- Request ----------------------------------------------------------------------------------------


def test_request_defaults() -> None:
    r = Request("http://example.com/a")
    assert r.url == "http://example.com/a"
    assert r.method == "GET"
    assert r.headers is None
    assert r.body == b""
    assert r.callback is None
    assert r.cb_kwargs == {}
    assert r.meta == {}
    assert r.priority == 0
    assert r.dont_filter is False
    assert r.depth == 0
    assert r.max_retries is None
    assert r.dont_retry is False
    assert r.attempt == 0
    assert repr(r) == "<Request GET http://example.com/a>"


def test_request_normalises_method_body_and_headers() -> None:
    headers = {"X-Token": "1"}
    r = Request("http://example.com/", method="post", body="a=é", headers=headers)
    assert r.method == "POST"
    assert r.body == "a=é".encode()
    assert r.headers == {"X-Token": "1"}
    headers["X-Token"] = "2"
    assert r.headers == {"X-Token": "1"}  # copied


def test_request_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="str"):
        Request(b"http://example.com/")  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["/relative", "relative/page.html", "example.com/a", "?q=1", ""])
def test_request_url_must_be_absolute(url: str) -> None:
    with pytest.raises(ValueError, match=r"absolute.*response\.follow"):
        Request(url)


def test_request_accepts_non_http_absolute_urls() -> None:
    # Non-fetchable schemes are filtered later (is_http_url); they are not construction errors.
    for url in ("mailto:a@example.com", "javascript:void(0)", "tel:+100", "data:text/plain,x", "ftp://x/y"):
        assert Request(url).url == url


def test_request_meta_and_cb_kwargs_are_kept() -> None:
    meta: dict[str, Any] = {"page": 3}
    r = Request("http://example.com/", meta=meta, cb_kwargs={"n": 1}, priority=5, depth=2)
    assert r.meta is meta
    assert r.cb_kwargs == {"n": 1}
    assert (r.priority, r.depth) == (5, 2)


def test_request_fingerprint() -> None:
    r = Request("http://Example.com:80/a?b=2&a=1#x")
    assert r.fingerprint == fingerprint("GET", "http://example.com/a?a=1&b=2")
    assert r.fingerprint is r.fingerprint  # computed once
    assert Request("http://example.com/a", method="POST", body=b"1").fingerprint != (
        Request("http://example.com/a", method="POST", body=b"2").fingerprint
    )
    assert (
        Request("http://example.com/a").fingerprint
        != Request("http://example.com/a", method="HEAD").fingerprint
    )


# -- callbacks --------------------------------------------------------------------------------------


def test_callback_bound_method_becomes_its_name() -> None:
    spider = ExampleSpider()
    assert Request("http://example.com/", spider.parse_item).callback == "parse_item"
    assert Request("http://example.com/", callback=spider.parse).callback == "parse"


def test_callback_string_and_none() -> None:
    assert Request("http://example.com/", "parse_item").callback == "parse_item"
    assert Request("http://example.com/").callback is None


@pytest.mark.parametrize(
    "callback",
    [lambda response: None, module_level_function, ExampleSpider.parse_item],
    ids=["lambda", "function", "unbound-method"],
)
def test_callback_function_is_a_type_error(callback: Any) -> None:
    with pytest.raises(TypeError) as info:
        Request("http://example.com/", callback)
    message = str(info.value)
    assert "method of the spider" in message
    assert "self.parse_item" in message
    assert "by name" in message
    assert "parser worker processes" in message


# -- pickling -----------------------------------------------------------------------------------


def _full_request() -> Request:
    r = Request(
        "http://example.com/a?b=1",
        ExampleSpider().parse_item,
        method="POST",
        headers={"X-A": "1"},
        body=b"payload",
        cb_kwargs={"n": 1},
        meta={"page": 3, "tags": ["a", "b"]},
        priority=7,
        dont_filter=True,
        max_retries=5,
        dont_retry=True,
        depth=4,
    )
    r.attempt = 2
    return r


_FIELDS = (
    "url",
    "method",
    "headers",
    "body",
    "callback",
    "cb_kwargs",
    "meta",
    "priority",
    "dont_filter",
    "depth",
    "max_retries",
    "dont_retry",
    "attempt",
)


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_request_pickle_round_trip(protocol: int) -> None:
    r = _full_request()
    fp = r.fingerprint
    copy = pickle.loads(pickle.dumps(r, protocol=protocol))
    assert isinstance(copy, Request)
    for name in _FIELDS:
        assert getattr(copy, name) == getattr(r, name), name
    assert copy._fingerprint == fp  # travels with the request, not recomputed
    assert copy.fingerprint == fp


def test_request_pickle_before_fingerprint_is_computed() -> None:
    r = Request("http://example.com/x?b=1&a=2")
    copy = pickle.loads(pickle.dumps(r))
    assert copy.fingerprint == r.fingerprint


@pytest.mark.parametrize(
    ("kwargs", "extras"),
    [
        ({}, ()),  # a plain request: the 14 fields stored jobs have always held
        ({"errback": "failed"}, (None, "failed", None)),
        ({"cookies": {"a": "1"}}, (None, None, {"a": "1"})),
        ({"render": False}, (None, None, None, False)),
    ],
)
def test_request_pickles_its_extras_only_when_set(kwargs: dict[str, Any], extras: tuple[Any, ...]) -> None:
    r = Request("http://example.com/x", **kwargs)
    rebuild, fields = r.__reduce__()
    assert rebuild is _rebuild_request
    assert len(fields) == 14 + len(extras)
    assert fields[14:] == extras
    copy = pickle.loads(pickle.dumps(r))
    assert (copy.errback, copy.cookies, copy.render) == (r.errback, r.cookies, r.render)


def test_a_request_subclass_pickles_as_itself() -> None:
    class Sub(Request):
        __slots__ = ()

    _, fields = Sub("http://example.com/x").__reduce__()
    assert fields[14:] == (Sub,)


def test_request_replace() -> None:
    r = _full_request()
    other = r.replace(url="http://example.com/b", priority=1)
    assert other.url == "http://example.com/b"
    assert other.priority == 1
    assert other.callback == "parse_item"
    assert other.meta == r.meta and other.meta is not r.meta
    assert other.cb_kwargs == r.cb_kwargs and other.cb_kwargs is not r.cb_kwargs
    assert (other.method, other.body, other.depth, other.dont_filter) == ("POST", b"payload", 4, True)
    assert other.fingerprint != r.fingerprint
    assert r.replace(callback="parse").callback == "parse"


# -- Response ---------------------------------------------------------------------------------------

PAGE_URL = "http://example.com/dir/page.html"


def make_response(
    body: bytes | str,
    content_type: str = "text/html",
    url: str = PAGE_URL,
    request: Request | None = None,
    status: int = 200,
) -> Response:
    data = body.encode() if isinstance(body, str) else body
    return Response(url, status, {"Content-Type": content_type}, data, request or Request(url))


LINKS_PAGE = """<!DOCTYPE html>
<html><head><title>links</title></head><body>
<h1 class="title">Hello</h1>
<a class="rel" href="next.html">next</a>
<a class="root" href="/top">top</a>
<a class="abs" href="https://other.example/x">other</a>
<a class="frag" href="#part">fragment</a>
<a class="up" href="../up.html">up</a>
<a class="query" href="?page=2">page 2</a>
<a class="space" href="  spaced.html  ">spaced</a>
<a name="anchor-without-href">no href</a>
<p class="item">one</p><p class="item">two</p>
</body></html>
"""


def test_response_basics() -> None:
    request = Request(PAGE_URL, meta={"k": "v"})
    r = Response(
        PAGE_URL, 404, [("content-type", "text/html"), ("X-Multi", "1"), ("X-Multi", "2")], b"x", request
    )
    assert r.status == 404
    assert r.headers["Content-Type"] == "text/html"
    assert r.headers.getall("x-multi") == ["1", "2"]
    assert r.request is request
    assert r.meta is request.meta
    assert r.meta == {"k": "v"}
    assert repr(r) == f"<Response 404 {PAGE_URL}>"


def test_text_and_encoding_from_header() -> None:
    text = "Zoë’s café — “naïve” façade"  # noqa: RUF001
    r = make_response(f"<p>{text}</p>".encode("cp1252"), "text/html; charset=windows-1252")
    assert r.encoding == "cp1252"
    assert r.text == f"<p>{text}</p>"
    assert r.css_first("p").text() == text


def test_text_latin1_label_decodes_as_cp1252() -> None:
    text = "“quoted” — dash"
    r = make_response(f"<p>{text}</p>".encode("cp1252"), "text/html; charset=ISO-8859-1")
    assert r.encoding == "cp1252"
    assert r.css_first("p").text() == text


def test_text_from_meta() -> None:
    body = '<html><head><meta charset="shift_jis"></head><body><p>日本語</p></body></html>'.encode(
        "shift_jis"
    )
    r = make_response(body)
    assert r.encoding == "cp932"  # Shift_JIS as browsers read it (WHATWG)
    assert "<p>日本語</p>" in r.text
    assert r.css_first("p").text() == "日本語"


def test_text_strips_utf8_bom() -> None:
    r = make_response(codecs.BOM_UTF8 + "<p>é</p>".encode())
    assert r.encoding == "utf-8"
    assert r.text == "<p>é</p>"
    assert r.css_first("p").text() == "é"


@pytest.mark.parametrize(
    ("bom", "codec"),
    [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
    ids=["le", "be"],
)
def test_text_strips_utf16_bom(bom: bytes, codec: str) -> None:
    # The BOM says how to decode; it is not part of the text (it is stripped for UTF-8 too).
    r = make_response(bom + "<p>é</p>".encode(codec))
    assert r.encoding == codec
    assert r.text == "<p>é</p>"


def test_text_undeclared_invalid_utf8_is_detected() -> None:
    # Not UTF-8 and nothing declared: a legacy page, read in the encoding its bytes suggest.
    r = make_response(b"<p>caf\xe9</p>")
    assert r.encoding != "utf-8"
    assert r.text == "<p>caf\u00e9</p>"


def test_css_and_css_first() -> None:
    r = make_response(LINKS_PAGE)
    assert [n.text() for n in r.css("p.item")] == ["one", "two"]
    assert r.css("p.none") == []
    title = r.css_first("h1.title")
    assert isinstance(title, LexborNode)
    assert title.text() == "Hello"
    assert r.css_first("p.none") is None
    assert r.css_first("p.none", default="fallback") == "fallback"
    assert r.tree is r.tree  # parsed once


def test_a_utf8_byte_order_mark_is_not_parsed_as_text() -> None:
    page = "<!DOCTYPE html><html><head><title>T</title><style>p{}</style></head><body><p>x</p></body></html>"
    r = make_response(codecs.BOM_UTF8 + page.encode())
    assert r.css_first("head > title").text() == "T"
    assert r.tree.body is not None and r.tree.body.text() == "x"
    assert r.text.startswith("<!DOCTYPE")


def test_urljoin_without_base() -> None:
    r = make_response(LINKS_PAGE)
    assert r.urljoin("next.html") == "http://example.com/dir/next.html"
    assert r.urljoin("/top") == "http://example.com/top"
    assert r.urljoin("../up.html") == "http://example.com/up.html"
    assert r.urljoin("?page=2") == "http://example.com/dir/page.html?page=2"
    assert r.urljoin("https://other.example/x") == "https://other.example/x"
    assert r.urljoin("//cdn.example/lib.js") == "http://cdn.example/lib.js"
    assert r.urljoin("  spaced.html ") == "http://example.com/dir/spaced.html"


@pytest.mark.parametrize(
    ("page_url", "href", "expected"),
    [
        # Page URLs that are not in plain form: the full resolution, whatever the link.
        ("http://example.com/dir/page.html?q=1", "next.html", "http://example.com/dir/next.html"),
        ("HTTP://Example.COM:80/dir/page.html", "next.html", "http://example.com/dir/next.html"),
        ("http://example.com/a/../dir/page.html", "next.html", "http://example.com/dir/next.html"),
        ("http://example.com", "next.html", "http://example.com/next.html"),
    ],
)
def test_urljoin_from_page_urls_of_every_form(page_url: str, href: str, expected: str) -> None:
    assert make_response(LINKS_PAGE, url=page_url).urljoin(href) == expected


def test_urljoin_with_base_href() -> None:
    body = LINKS_PAGE.replace("<title>", '<base href="/base/sub/"><title>')
    r = make_response(body)
    assert r.urljoin("next.html") == "http://example.com/base/sub/next.html"
    assert r.urljoin("../up.html") == "http://example.com/base/up.html"
    assert r.urljoin("/top") == "http://example.com/top"
    assert r.urljoin("https://other.example/x") == "https://other.example/x"


def test_urljoin_with_absolute_base_href_uppercase_tag() -> None:
    body = LINKS_PAGE.replace("<title>", '<BASE HREF="https://mirror.example/root/"><title>')
    r = make_response(body)
    assert r.urljoin("next.html") == "https://mirror.example/root/next.html"


def test_base_without_href_is_ignored() -> None:
    body = LINKS_PAGE.replace("<title>", '<base target="_blank"><title>')
    assert make_response(body).urljoin("next.html") == "http://example.com/dir/next.html"


def test_follow_relative_absolute_and_node() -> None:
    r = make_response(LINKS_PAGE)
    req = r.follow("next.html")
    assert isinstance(req, Request)
    assert req.url == "http://example.com/dir/next.html"
    assert r.follow("https://other.example/x").url == "https://other.example/x"
    node = r.css_first("a.up")
    assert r.follow(node).url == "http://example.com/up.html"


def test_follow_passes_callback_and_options() -> None:
    spider = ExampleSpider()
    r = make_response(LINKS_PAGE)
    req = r.follow(
        "next.html", spider.parse_item, meta={"a": 1}, priority=3, cb_kwargs={"x": 2}, dont_filter=True
    )
    assert req.callback == "parse_item"
    assert req.meta == {"a": 1}
    assert (req.priority, req.cb_kwargs, req.dont_filter) == (3, {"x": 2}, True)
    with pytest.raises(TypeError):
        r.follow("next.html", lambda response: None)


def test_follow_node_without_href() -> None:
    r = make_response(LINKS_PAGE)
    with pytest.raises(ValueError, match="no href"):
        r.follow(r.css_first("a[name]"))


def test_follow_all_css() -> None:
    r = make_response(LINKS_PAGE)
    urls = [req.url for req in r.follow_all(css="a")]
    assert urls == [
        "http://example.com/dir/next.html",
        "http://example.com/top",
        "https://other.example/x",
        "http://example.com/dir/page.html#part",
        "http://example.com/up.html",
        "http://example.com/dir/page.html?page=2",
        "http://example.com/dir/spaced.html",
    ]  # the <a> without href is skipped
    assert [req.url for req in r.follow_all(css="a.root, a.abs")] == [
        "http://example.com/top",
        "https://other.example/x",
    ]
    assert list(r.follow_all(css="a.none")) == []


def test_follow_all_css_with_base_href_and_callback() -> None:
    body = LINKS_PAGE.replace("<title>", '<base href="http://mirror.example/m/"><title>')
    r = make_response(body)
    reqs = list(r.follow_all(css="a.rel", callback="parse_item", meta={"from": "list"}))
    assert [(q.url, q.callback, q.meta) for q in reqs] == [
        ("http://mirror.example/m/next.html", "parse_item", {"from": "list"})
    ]


def test_follow_all_urls_and_nodes() -> None:
    r = make_response(LINKS_PAGE)
    urls = [q.url for q in r.follow_all(["a.html", "/b", r.css_first("a.abs")])]
    assert urls == ["http://example.com/dir/a.html", "http://example.com/b", "https://other.example/x"]
    assert list(r.follow_all([])) == []


def test_follow_all_needs_exactly_one_source() -> None:
    r = make_response(LINKS_PAGE)
    with pytest.raises(ValueError, match="either urls or css"):
        list(r.follow_all())
    with pytest.raises(ValueError, match="either urls or css"):
        list(r.follow_all(["a"], css="a"))


def test_follow_all_css_survives_malformed_hrefs() -> None:
    # Real pages carry broken links. follow() turns an href into a URL with yarl, which raises
    # ValueError for some of them (no host, a bad port, a broken IPv6 literal), so one such <a>
    # makes follow_all(css="a") raise in the middle of the page: the callback fails and every item
    # and link of the page is lost. follow_all should skip what cannot be a request.
    body = LINKS_PAGE.replace(
        '<p class="item">',
        '<a href="http://:80/">no host</a><a href="http://[bad/">bad v6</a>'
        '<a href="http://example.com:99999/">bad port</a><p class="item">',
        1,
    )
    r = make_response(body)
    urls = [req.url for req in r.follow_all(css="a")]
    assert "http://example.com/dir/next.html" in urls
    assert "http://example.com/dir/spaced.html" in urls
