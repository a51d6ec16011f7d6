"""Links resolved as browsers resolve them: the WHATWG URL Standard's own tests, and fingerprints
that stay what they were for URLs that were canonical already (a resumed job keeps its dedup).

``tests/data/wpt-urltestdata.json`` is web-platform-tests' ``url/resources/urltestdata.json``
(BSD-3-Clause, (c) web-platform-tests contributors).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from selectolax.lexbor import LexborHTMLParser
from yarl import URL

from crawlkit.demo import generate
from crawlkit.demo._bench_html import index_page, listing_page
from crawlkit.http import Request, Response, canonicalize_url, fingerprint
from crawlkit.http import _urls as urls

WPT = Path(__file__).resolve().parents[1] / "data" / "wpt-urltestdata.json"
READABILITY = (Path(__file__).resolve().parents[3] / "shared" / "corpus" / "readability").resolve()


def _wpt_cases() -> list[dict[str, Any]]:
    cases = [case for case in json.loads(WPT.read_text()) if isinstance(case, dict)]
    return [
        case
        for case in cases
        if case.get("base") and case["base"].partition(":")[0].lower() in ("http", "https")
    ]


WPT_CASES = _wpt_cases()


def _response(url: str) -> Response:
    return Response(url, 200, {"Content-Type": "text/html; charset=utf-8"}, b"<p>", Request(url))


def test_the_wpt_file_holds_the_cases_with_an_http_base() -> None:
    assert len(WPT_CASES) == 202
    assert sum(1 for case in WPT_CASES if case.get("failure")) == 52


@pytest.mark.parametrize("case", WPT_CASES, ids=[f"{i}:{c['input']!r:.40}" for i, c in enumerate(WPT_CASES)])
def test_urljoin_resolves_as_the_url_standard(case: dict[str, Any]) -> None:
    response = _response(case["base"])
    if case.get("failure"):
        with pytest.raises(ValueError):
            response.urljoin(case["input"])
    else:
        assert response.urljoin(case["input"]) == case["href"]


@pytest.mark.parametrize("case", WPT_CASES, ids=[f"{i}:{c['input']!r:.40}" for i, c in enumerate(WPT_CASES)])
def test_follow_all_requests_what_a_browser_would_fetch(case: dict[str, Any]) -> None:
    response = _response(case["base"])
    requests = list(response.follow_all([case["input"]], deny_extensions=()))
    if case.get("failure"):
        assert requests == []  # never fetched ...
        assert response.invalid_links == 1  # ... and counted
        return
    assert response.invalid_links == 0
    if case["protocol"] in ("http:", "https:"):
        assert [request.url for request in requests] == [case["href"]]
        # Its fingerprint is that of the URL without its fragment: a canonical form exists.
        assert canonicalize_url(case["href"]) == canonicalize_url(case["href"].partition("#")[0])
    else:
        assert all(not request.url.startswith(("http:", "https:")) for request in requests)


# -- fingerprints of URLs that were canonical before the WHATWG parser -------------------------------


def _yarl_canonical(url: str) -> str:
    """The canonical form crawlkit computed with yarl, that stored fingerprints were made of."""
    plain = urls._plain_parts(url)
    if plain is not None:
        return url if plain[1] else url + "/"
    u = URL(url)
    if u.raw_fragment:
        u = u.with_fragment(None)
    query = u.raw_query_string
    if query:
        u = u.with_query(None)
    text = str(u)
    if u.raw_path == "/" and not text.endswith("/"):
        text += "/"
    if query:
        return f"{text}?{urlencode(sorted(parse_qsl(query, keep_blank_values=True)))}"
    return text


def _yarl_fingerprint(method: str, url: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(method.upper().encode())
    h.update(b" ")
    h.update(_yarl_canonical(url).encode("utf-8", "surrogatepass"))
    return h.digest()


def _hrefs(html: str | bytes) -> list[str]:
    tree = LexborHTMLParser(html)
    return [href for node in tree.css("a[href]") if (href := node.attributes.get("href")) is not None]


def _demo_urls() -> set[str]:
    """Every link of the demo bookshop and of the bench shop's first pages, made absolute."""
    base = "http://127.0.0.1:8080"
    found: set[str] = set()
    pages: list[tuple[str, bytes]] = [(path, page.body) for path, page in generate().pages.items()]
    pages.append(("/", index_page(0, 2000)))
    pages += [(f"/catalogue/page-{k}.html", listing_page(0, 2000, k, 100)) for k in range(1, 30)]
    for path, body in pages:
        response = Response(base + path, 200, {"Content-Type": "text/html"}, body, Request(base + path))
        found.add(response.url)
        for href in _hrefs(body):
            with contextlib.suppress(ValueError):
                found.add(str(URL(response.url).join(URL(href.strip()))))
    return {url for url in found if url.startswith("http")}


def _readability_urls() -> set[str]:
    """Every http(s) link of the readability corpus, resolved the old way and the new way."""
    if not READABILITY.is_dir():
        pytest.skip(f"{READABILITY} is absent (the shared corpus is not on this machine)")
    found: set[str] = set()
    for path in sorted(READABILITY.glob("*.html")):
        page_url = f"http://corpus.test/{path.name}"
        response = Response(
            page_url, 200, {"Content-Type": "text/html"}, path.read_bytes(), Request(page_url)
        )
        for href in _hrefs(response.text):
            for old_way in (True, False):
                try:
                    url = str(URL(page_url).join(URL(href.strip()))) if old_way else response.urljoin(href)
                except ValueError:
                    continue
                if url.startswith(("http://", "https://")):
                    found.add(url)
    return found


@pytest.mark.parametrize("source", ["demo", "readability"])
def test_fingerprints_of_canonical_urls_are_unchanged(source: str) -> None:
    found = _demo_urls() if source == "demo" else _readability_urls()
    canonical = set()
    changed: Counter[str] = Counter()
    for url in found:
        try:
            old = _yarl_canonical(url)
        except ValueError:
            continue
        if old == url or _yarl_canonical(old) == old:
            canonical.add(old)
    assert len(canonical) > (1000 if source == "demo" else 10000)
    refused = []
    for url in canonical:
        try:
            assert canonicalize_url(url) == url
        except ValueError:
            refused.append(url)  # no URL to a browser either: never requested, never fingerprinted
            continue
        assert fingerprint("GET", url) == _yarl_fingerprint("GET", url), url
    # In the readability corpus one: a host "%3c" (from an unexpanded PHP template).
    assert all("%" in URL(url).raw_host for url in refused), refused
    assert len(refused) <= len(canonical) // 1000
    for url in found - canonical:
        try:
            same = canonicalize_url(url) == _yarl_canonical(url)
        except ValueError:
            same = False
        changed["same" if same else "changed"] += 1
    print(f"{source}: {len(canonical)} canonical URLs, fingerprints unchanged but {len(refused)} refused")
    print(f"{source}: the other URLs' canonical forms: {dict(changed)}")
