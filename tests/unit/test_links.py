"""Link following filters, binary detection and redirect hops: the pure parts, without a server."""

from __future__ import annotations

import contextlib

import pytest
from yarl import URL

from crawlkit import Request, Response
from crawlkit.errors import NotTextError
from crawlkit.http._content import is_binary_type
from crawlkit.http._links import IGNORED_EXTENSIONS
from crawlkit.http._redirects import SchemeRedirect, next_hop

PAGE = b"""<!DOCTYPE html><html><body>
<a href="/a">a</a>
<a href=" javascript:void(0)">js</a><a href="MAILTO:x@y.z">mail</a><a href="tel:+1">tel</a>
<a href="data:text/html,hi">data</a>
<a href="/img/photo.JPG">photo</a><a href="/doc.pdf?download=1">pdf</a><a href="/f.tar.gz">tgz</a>
<a href="/page.html">html</a><a href="/blog/2024/post">post</a><a href="/blog/tag/x">tag</a>
<a href="/v1.2/">dotted folder</a><a href="/.well-known">dotfile</a>
</body></html>"""


def response(body: bytes = PAGE, content_type: str = "text/html") -> Response:
    return Response(
        "http://a.test/start", 200, {"Content-Type": content_type}, body, Request("http://a.test/start")
    )


def urls(requests: object) -> list[str]:
    return [r.url.removeprefix("http://a.test") for r in requests]  # type: ignore[attr-defined]


def test_follow_all_skips_non_http_links_and_binary_files_by_default() -> None:
    assert urls(response().follow_all(css="a")) == [
        "/a", "/page.html", "/blog/2024/post", "/blog/tag/x", "/v1.2/", "/.well-known",
    ]  # fmt: skip


def test_follow_all_joins_as_urljoin_does_on_every_kind_of_link() -> None:
    page = response(
        b"""<html><body><a href="/a b">space</a><a href="../up/x">dots</a><a href=" rel.html ">pad</a>
        <a href="https://b.test:8443/p?q=1#f">absolute</a><a href="//c.test/p">scheme-relative</a>
        <a href="page:2.html">a scheme</a><a href="http://[::1">broken</a><a href="?p=2">query</a>
        </body></html>"""
    )
    expected = []
    for node in page.css("a"):
        with contextlib.suppress(ValueError):  # the broken one
            expected.append(page.urljoin(node.attributes["href"]))
    assert "page:2.html" in expected  # no "://": no request is made of it
    assert [r.url for r in page.follow_all(css="a")] == [url for url in expected if "://" in url]
    assert len(expected) == 7
    assert page.invalid_links == 1


def test_follow_all_joins_against_the_base_href() -> None:
    page = response(
        b'<html><head><base href="http://b.test/dir/"></head><body><a href="x.html">x</a></body></html>'
    )
    assert [r.url for r in page.follow_all(css="a")] == ["http://b.test/dir/x.html"]


def test_deny_extensions_can_be_changed_or_emptied() -> None:
    everything = urls(response().follow_all(css="a", deny_extensions=()))
    assert "/img/photo.JPG" in everything and "/doc.pdf?download=1" in everything
    assert not any(u.startswith(("javascript", "mailto")) for u in everything)  # never requests
    assert "/page.html" not in urls(response().follow_all(css="a", deny_extensions=["html", ".gz"]))
    assert {"pdf", "jpg", "zip", "mp4", "woff2", "docx"} <= set(IGNORED_EXTENSIONS)


def test_allow_and_deny_patterns() -> None:
    assert urls(response().follow_all(css="a", allow=r"/blog/")) == ["/blog/2024/post", "/blog/tag/x"]
    assert urls(response().follow_all(css="a", allow=[r"/blog/", r"/a$"], deny=r"/tag/")) == [
        "/a",
        "/blog/2024/post",
    ]
    assert urls(response().follow_all(["/x", "/y.png", "mailto:q"], deny="x")) == []


def test_follow_all_with_no_filters_still_drops_bad_hrefs() -> None:
    links = response(b'<a href="http://[::1">bad</a><a href="/ok">ok</a>').follow_all(css="a")
    assert urls(links) == ["/ok"]


@pytest.mark.parametrize(
    ("content_type", "binary"),
    [
        ("text/html; charset=utf-8", False),
        ("text/plain", False),
        ("application/xhtml+xml", False),
        ("application/json", False),
        ("application/rss+xml", False),
        ("application/vnd.api+json", False),
        ("", False),
        (None, False),
        ("image/png", True),
        ("application/pdf", True),
        ("application/octet-stream", True),
        ("application/zip", True),
        ("video/mp4", True),
        ("font/woff2", True),
        ("Application/PDF ; q=1", True),
    ],
)
def test_binary_content_types(content_type: str | None, binary: bool) -> None:
    assert is_binary_type(content_type) is binary


def test_text_and_css_of_a_binary_response_raise_a_clear_error() -> None:
    png = response(b"\x89PNG\r\n\x1a\n", "image/png")
    assert png.body.startswith(b"\x89PNG")
    with pytest.raises(NotTextError, match=r"image/png, not text; use response\.body"):
        png.text  # noqa: B018
    with pytest.raises(NotTextError, match=r"response\.css\(\)"):
        png.css("a")


def test_redirect_hops_follow_browser_method_rules() -> None:
    here = URL("http://a.test/form")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "Bearer t",
        "X-Keep": "1",
    }
    hop = next_hop(302, "POST", here, "/done#top", b"a=1", headers)
    assert (hop.method, hop.url, hop.body) == ("GET", "http://a.test/done", None)
    assert hop.headers == {"Authorization": "Bearer t", "X-Keep": "1"}  # same origin: credentials kept
    assert next_hop(303, "PUT", here, "/x", b"a", None).method == "GET"
    assert next_hop(303, "HEAD", here, "/x", None, None).method == "HEAD"
    assert next_hop(301, "GET", here, "/x", None, None).method == "GET"
    kept = next_hop(307, "POST", here, "http://b.test/y", b"a=1", headers)
    assert (kept.method, kept.body) == ("POST", b"a=1")
    assert kept.headers == {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Keep": "1",
    }  # other origin
    assert next_hop(308, "PUT", here, "../z", b"b", None).url == "http://a.test/z"
    # Another scheme is filtered as scheme_redirect by the fetcher, not failed as unusable.
    with pytest.raises(SchemeRedirect, match="not http"):
        next_hop(302, "GET", here, "mailto:someone@a.test", None, None)
    # A byte that is not UTF-8 (aiohttp hands it over as a lone surrogate) is kept, percent-encoded.
    assert next_hop(302, "GET", here, "/caf\udce9?q=\udce9", None, None).url == "http://a.test/caf%E9?q=%E9"


def test_follow_all_of_no_links_on_a_binary_response_asks_nothing_of_its_body() -> None:
    image = response(b"\x89PNG\r\n<base href=x>", content_type="image/png")
    assert list(image.follow_all([])) == []
    with pytest.raises(NotTextError):
        list(image.follow_all(["/a"]))  # a <base> would change it: the body must be read as HTML
