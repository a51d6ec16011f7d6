"""parsel's vocabulary on ``response.css()`` (selectolax underneath) and parsel itself for XPath."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from selectolax.lexbor import LexborNode

from crawlkit import Request, Response

URL = "http://shop.test/catalogue/page.html"
PAGE = """<!doctype html><html><head><title>Shop</title><base href="/catalogue/"></head><body>
<div id="app" data-api="/api/v1/products">
  <h1 class="title">Hello <b>big</b> world</h1>
  <ul>
    <li class="item"><a class="product" href="p/1.html">One</a> <span class="price">£12.50</span></li>
    <li class="item"><a class="product" href="p/2.html">Two</a> <span class="price">£7.00</span></li>
  </ul>
  <ul class="pager"><li class="next"><a href="page-2.html">next</a></li></ul>
</div></body></html>"""


def page(body: str = PAGE, url: str = URL, content_type: str = "text/html") -> Response:
    return Response(url, 200, {"Content-Type": content_type}, body.encode(), Request(url))


def test_the_forms_a_scrapy_user_writes() -> None:
    r = page()
    assert r.css("h1::text").get() == "Hello "
    assert r.css("#app::attr(data-api)").get() == "/api/v1/products"
    assert r.xpath("//a[@class='product']/@href").getall() == ["p/1.html", "p/2.html"]
    assert r.selector.css("li.next a::attr(href)").get() == "page-2.html"
    assert r.xpath("//h1/text()").get() == "Hello "


def test_text_and_attr_pseudo_elements_as_parsel_reads_them() -> None:
    r = page()
    assert r.css("h1::text").getall() == ["Hello ", " world"]  # the h1's own text nodes
    assert r.css("h1 ::text").getall() == ["Hello ", "big", " world"]  # and its descendants'
    assert r.css("a.product::attr(href)").getall() == ["p/1.html", "p/2.html"]
    assert r.css("a.none::attr(href)").get() is None
    assert r.css("a.none::attr(href)").get(default="") == ""
    assert r.css("span.price::text").re(r"[\d.]+") == ["12.50", "7.00"]
    assert r.css("span.price::text").re_first(r"£(\d+)\.(\d+)") == "12"
    assert r.css("span.price::text").re_first(r"(?P<extract>\d+)\.\d+") == "12"
    assert r.css("span.none::text").re_first(r"\d", default="0") == "0"
    assert r.css_first("h1::text") == "Hello "
    assert r.css_first("h2::text") is None
    assert r.css_first("h2::text", default="") == ""
    assert r.css_first("li.item:nth-child(2) a::text") == "Two"


def test_results_keep_the_node_methods_and_add_parsels() -> None:
    r = page()
    rows = r.css("li.item")
    assert all(isinstance(row, LexborNode) for row in rows)  # existing spiders' checks hold
    first = rows[0]
    assert first.css_first("a").text() == "One"
    assert first.css_first("a").attributes["href"] == "p/1.html"
    assert first.css_first("a").attrs["href"] == "p/1.html"
    assert first.css("a::attr(href)").get() == "p/1.html"
    assert first.css("::text").getall() == ["One", " ", "£12.50"]
    assert first.css("a").attrib == {"class": "product", "href": "p/1.html"}
    assert first.css("a").get() == '<a class="product" href="p/1.html">One</a>'
    assert first.css("a")[0].get() == first.css("a").get()
    assert first.tag == "li" and first.parent.tag == "ul"
    assert rows.css("a::text").getall() == ["One", "Two"]  # on a list: every element, in order
    assert rows[1:].css("a::text").getall() == ["Two"]
    assert [t.get() for t in r.css("a.product::text")] == ["One", "Two"]
    assert r.css("h1").re_first(r"<b>(\w+)</b>") == "big"
    assert r.css("h1").attrib == {"class": "title"}
    assert r.css("p.none").attrib == {}
    assert r.css("p.none") == []


def test_a_wrong_selector_gets_an_answer_not_a_bare_error() -> None:
    r = page()
    with pytest.raises(ValueError, match=r"'::text' and '::attr\(name\)'.*response.selector.css"):
        r.css_first("p::first-line")
    with pytest.raises(ValueError, match="at the end"):
        r.css("a::text b")
    with pytest.raises(ValueError, match=r"looks like XPath: use response.xpath\('//h1'\)"):
        r.css("//h1")
    with pytest.raises(AttributeError, match=r"response\.xpath"):
        r.css("li").xpath("./a")
    for select in (r.css, r.css_first, r.css_first("ul").css, r.css_first("ul").css_first):
        with pytest.raises(ValueError, match=r"looks like XPath: use response.xpath\('//li'\)"):
            select("//li")  # no pseudo-element: the query goes straight to selectolax
        with pytest.raises(ValueError, match=r"invalid CSS selector 'li\['"):
            select("li[")
    with pytest.raises(TypeError, match="takes a CSS selector string"):
        r.css(None)  # type: ignore[arg-type]


def test_follow_takes_what_selectors_return() -> None:
    r = page()
    base = "http://shop.test/catalogue/"
    assert r.follow(r.css("li.next a::attr(href)").get()).url == base + "page-2.html"
    assert r.follow(r.css("li.next a")[0]).url == base + "page-2.html"
    assert r.follow(r.css_first("li.next a")).url == base + "page-2.html"
    assert r.follow(r.xpath("//li[@class='next']/a")[0]).url == base + "page-2.html"
    assert r.follow(r.xpath("//li[@class='next']/a/@href")[0]).url == base + "page-2.html"
    expected = [base + "p/1.html", base + "p/2.html"]
    assert [q.url for q in r.follow_all(r.css("a.product"))] == expected
    assert [q.url for q in r.follow_all(r.css("a.product::attr(href)"))] == expected
    assert [q.url for q in r.follow_all(r.xpath("//a[@class='product']"))] == expected
    assert [q.url for q in r.follow_all(css="a.product::attr(href)")] == expected
    assert [q.url for q in r.follow_all(xpath="//a[@class='product']/@href")] == expected
    with pytest.raises(TypeError, match="follow_all"):
        r.follow(r.css("a.product"))
    with pytest.raises(ValueError, match="no href"):
        r.follow(r.css_first("h1"))


def test_xml_pages_get_an_xml_selector() -> None:
    feed = '<?xml version="1.0"?><rss><channel><item><link>http://a.test/1</link></item></channel></rss>'
    r = page(feed, content_type="application/rss+xml")
    assert r.xpath("//item/link/text()").getall() == ["http://a.test/1"]
    assert r.selector.type == "xml"


def test_css_only_spiders_never_load_parsel_or_lxml() -> None:
    code = (
        "import sys\nfrom crawlkit import Request, Response\n"
        "r = Response('http://a.test/', 200, {}, b'<h1>x</h1><a href=/y>y</a>', Request('http://a.test/'))\n"
        "assert r.css('h1::text').get() == 'x' and r.follow(r.css_first('a')).url == 'http://a.test/y'\n"
        "assert 'parsel' not in sys.modules and 'lxml' not in sys.modules, 'loaded'\n"
        "r.xpath('//h1')\nassert 'parsel' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pseudo_elements_agree_with_parsel_on_real_pages(shared_dir: Path) -> None:
    from parsel import Selector

    queries = ["title::text", "a::attr(href)", "h1 ::text", "p::text", "meta::attr(content)", "li a::text"]
    # Where lxml and an HTML5 parser build different trees (template contents, misnested tags),
    # the answers differ for that reason alone.
    tree_differences = {("article-author-tag.html", "a::attr(href)")}
    disagree = []
    for path in sorted((shared_dir / "corpus" / "readability").glob("*.html")):
        r = Response("http://x.test/", 200, {"Content-Type": "text/html"}, path.read_bytes(), Request(URL))
        theirs = Selector(text=r.text)
        for query in queries:
            if (path.name, query) in tree_differences:
                continue
            ours, expected = r.css(query).getall(), theirs.css(query).getall()
            if "::text" in query:  # the two parsers keep different whitespace-only text nodes
                ours = [t for t in ours if t.strip()]
                expected = [t for t in expected if t.strip()]
            if ours != expected:
                disagree.append((path.name, query))
    assert disagree == []
