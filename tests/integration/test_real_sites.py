"""End to end on real sites: the static mirrors of ``../shared/sites`` (books, quotes, jobs).

Each mirror is served as it is on 127.0.0.1 by a real HTTP server (aiohttp, in a thread of its
own) that logs every request; the crawls run as a user runs them (the ``crawlkit`` executable
with the default durable frontier, or ``crawlkit.crawl()``) with real parser worker processes.

Every expectation comes from the mirror's files, read here independently of crawlkit: the link
graph and the fields of each page are taken out with plain regular expressions, never with the
selectors the spiders use. The mirrors are not the project's and are not copied into it; where
``../shared/sites`` is absent, these tests skip.

The mirrors' pagination links are file names in which the mirroring tool replaced ``?`` by ``@``
(``index.html@page=2.html``, ``category/10@page=2.html``), linked as such: the server maps a
request's path, ``@`` and ``=`` included, to the file of that name, and answers 404 to any query
string, which no link on these sites carries (``link_graph()`` checks it).
"""

from __future__ import annotations

import html
import re
import signal
import subprocess
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import pytest
from aiohttp import web

from crawlkit import CrawlkitError, crawl
from crawlkit.testing import load_spider
from crawlspiders.site_books_offsite import BooksOffsiteSpider
from crawlspiders.site_quotes import QuotesSpider
from support.procs import CRAWLKIT_EXE, reaped, wait_for_lines
from support.serverthread import ServerThread

REPO_ROOT = Path(__file__).resolve().parents[2]
SITES = REPO_ROOT.parent / "shared" / "sites"
SPIDERS = REPO_ROOT / "tests" / "crawlspiders"


# -- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request the mirror answered."""

    method: str
    target: str  # the request target as sent: raw path and query
    host: str  # the Host header
    status: int


def file_for(root: Path, path: str) -> Path | None:
    """The file of ``root`` that a URL path names (``/`` and ``.../`` name their index.html)."""
    rel = path.lstrip("/")
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    target = (root / rel).resolve()
    return target if target.is_file() and root in target.parents else None


CONTENT_TYPES = {".html": "text/html", ".css": "text/css"}


class Mirror(ServerThread):
    """A site mirror served as static files on 127.0.0.1; ``hits`` lists every request it answered."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        super().__init__(what=f"the mirror of {self.root}", thread_name=f"mirror-{self.root.name}")
        self._hits: list[Hit] = []
        self._lock = threading.Lock()

    @property
    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def pages_served(self) -> Counter[str]:
        """How many times each page was served (every request but robots.txt, which the crawl asks for)."""
        return Counter(h.target for h in self.hits if h.target != "/robots.txt")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        file = None if request.query_string else file_for(self.root, request.path)
        status = 200 if file is not None else 404
        with self._lock:
            self._hits.append(Hit(request.method, request.raw_path, request.host, status))
        if file is None:
            return web.Response(status=404, text="not found")
        ctype = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
        return web.Response(body=file.read_bytes(), content_type=ctype, charset="utf-8")

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        return app


def serve(name: str) -> Iterator[Mirror]:
    root = SITES / name
    if not root.is_dir():
        pytest.skip(
            f"../shared/sites/{name} not found: {root} is absent (the shared folder lies beside "
            "the repository checkout)"
        )
    mirror = Mirror(root)
    mirror.start()
    try:
        yield mirror
    finally:
        mirror.stop()


@pytest.fixture
def books() -> Iterator[Mirror]:
    yield from serve("books")


@pytest.fixture
def quotes() -> Iterator[Mirror]:
    yield from serve("quotes")


@pytest.fixture
def jobs() -> Iterator[Mirror]:
    yield from serve("jobs")


# -- the sites, read independently --------------------------------------------------------------

ANCHOR_HREF = re.compile(r'<a\s[^>]*?(?<=\s)href="([^"]*)"', re.S)
ASSET_REFS = re.compile(r'<(?:link\s[^>]*?(?<=\s)href|form\s[^>]*?(?<=\s)action)="([^"]*)"', re.S)
ORIGIN = "http://mirror.invalid"


@dataclass
class LinkGraph:
    """The pages reached from a start page by following every ``<a href>``, as a spider would."""

    pages: dict[str, Path] = field(default_factory=dict)  # URL path -> its file, in crawl order
    links: Counter[str] = field(default_factory=Counter)  # on-site URL path -> links to it
    offsite: list[str] = field(default_factory=list)  # one entry per link to another host


def link_graph(root: Path, start: str = "/", leaf: Callable[[str], bool] = lambda path: False) -> LinkGraph:
    """Follow the links of the mirror's files from ``start``; the links of ``leaf`` pages are not followed."""
    graph = LinkGraph()
    first = file_for(root.resolve(), start)
    assert first is not None, f"{root} has no page {start}"
    graph.pages[start] = first
    queue = deque([start])
    while queue:
        path = queue.popleft()
        if leaf(path):
            continue
        for href in ANCHOR_HREF.findall(graph.pages[path].read_text("utf-8")):
            url = urljoin(ORIGIN + path, html.unescape(href).strip())
            parts = urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}" != ORIGIN:
                graph.offsite.append(url)
                continue
            assert not parts.query and not parts.fragment, f"{path} links to {href!r}"
            graph.links[parts.path] += 1
            if parts.path not in graph.pages:
                file = file_for(root.resolve(), parts.path)
                assert file is not None, f"{path} links to {href!r}, which the mirror lacks"
                graph.pages[parts.path] = file
                queue.append(parts.path)
    return graph


def _text(fragment: str) -> str:
    return html.unescape(fragment).strip()


def _one(pattern: str, text: str) -> str:
    found = re.findall(pattern, text, re.S)
    assert len(found) == 1, f"{pattern!r} matches {len(found)} times"
    return _text(found[0])


def book_on_disk(text: str) -> dict[str, Any]:
    """What a product page of the books mirror offers."""
    available = re.findall(r"In stock \((\d+) available\)", text)
    return {
        "title": _one(r"<h1>(.*?)</h1>", text),
        "price": float(_one(r'<p class="mb-0">Price: £([0-9.]+)</p>', text)),
        "in_stock": _one(r'<p class="mb-0">\s*(In stock|Out of stock)\s*</p>', text) == "In stock",
        "available": int(available[0]) if available else 0,
        "upc": _one(r"<dt[^>]*>UPC</dt>\s*<dd[^>]*>(.*?)</dd>", text),
        "rating": text.count('<span class="star filled">'),
        "category": _text(re.findall(r'<li class="breadcrumb-item">\s*<a href="[^"]*">(.*?)</a>', text)[-1]),
    }


def quotes_on_disk(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The quotes of a listing page of the quotes mirror: (text, author, tags)."""
    found = []
    for chunk in text.split('<div class="quote"')[1:]:
        tags = chunk.split('<div class="tags">', 1)[1].split("</div>", 1)[0]
        found.append(
            (
                _one(r'<span class="text" itemprop="text">(.*?)</span>', chunk),
                _one(r'<small class="author" itemprop="author">(.*?)</small>', chunk),
                tuple(_text(t) for t in re.findall(r'<a class="tag" href="[^"]*">(.*?)</a>', tags)),
            )
        )
    return found


def author_on_disk(text: str) -> dict[str, Any]:
    return {
        "name": _one(r'<h3 class="author-title">(.*?)</h3>', text),
        "born_date": _one(r'<span class="author-born-date">(.*?)</span>', text),
        "born_location": _one(r'<span class="author-born-location">(.*?)</span>', text),
    }


def job_on_disk(text: str) -> dict[str, Any]:
    """What a job page of the jobs mirror offers."""

    def described(term: str) -> str:
        return _one(rf"<dt[^>]*>{term}</dt>\s*<dd[^>]*>(.*?)</dd>", text)

    return {
        "title": _one(r"<h1>(.*?)</h1>", text),
        "published": _one(r'<p class="job-date">Published on (.*?)</p>', text),
        "category": _one(r'<a class="job-category-link"\s+href="[^"]*">(.*?)</a>', text),
        "company": _one(r'<span class="job-company">(.*?)</span>', text),
        "work_type": _one(r'<span class="job-work-type">(.*?)</span>', text),
        "location": _one(r'<span class="job-location">(.*?)</span>', text),
        "salary": described("Salary range"),
        "experience": described("Required experience"),
        "benefits": [_text(b) for b in re.findall(r"<li>(.*?)</li>", described("Benefits"))],
        "phone": _one(r'<span class="phone">(.*?)</span>', text),
    }


def pages_of(root: Path, folder: str, parse: Callable[[str], Any]) -> dict[str, Any]:
    """``parse`` of every page in ``root/folder``, by URL path."""
    found = {f"/{folder}/{f.name}": parse(f.read_text("utf-8")) for f in (root / folder).glob("*.html")}
    assert found, f"{root / folder} has no pages"
    return found


# -- running crawls -----------------------------------------------------------------------------


def cli_command(spider: str, mirror: Mirror, out: Path, *options: str) -> list[str]:
    return [
        str(CRAWLKIT_EXE), "runspider", str(SPIDERS / spider), "-o", str(out),
        "-a", f"base={mirror.base}", "--stats-file", str(out.with_suffix(".stats.json")), *options,
    ]  # fmt: skip


def run_cli(cmd: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert CRAWLKIT_EXE.is_file(), f"{CRAWLKIT_EXE} is not installed"
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes() if path.exists() else b""
    assert data == b"" or data.endswith(b"\n"), "the output ends in a partial line"
    return [orjson.loads(line) for line in data.splitlines()]


def summary_figure(err: str, row: str) -> str:
    found: list[str] = re.findall(rf"^  {row} +(\S.*)$", err, re.M)
    assert len(found) == 1, f"no single {row!r} row in the summary:\n{err}"
    return found[0]


def path_of(url: str, mirror: Mirror) -> str:
    parts = urlsplit(url)
    assert parts.netloc == mirror.netloc and not parts.query, url
    return parts.path


def by_path(items: list[dict[str, Any]], mirror: Mirror) -> dict[str, dict[str, Any]]:
    """Items by the path of their ``url`` (removed from them); no two items may have the same."""
    paths = Counter(path_of(item["url"], mirror) for item in items)
    assert [p for p, n in paths.items() if n > 1] == [], "pages written more than once"
    return {path_of(item["url"], mirror): {k: v for k, v in item.items() if k != "url"} for item in items}


def differences(got: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """(got, expected) for each key where they differ, at most five (short assertion messages)."""
    diff = {k: (got.get(k), expected.get(k)) for k in sorted(got.keys() | expected.keys())}
    return dict(list({k: v for k, v in diff.items() if v[0] != v[1]}.items())[:5])


# -- books --------------------------------------------------------------------------------------


def test_books_whole_catalogue_from_the_home_page(books: Mirror, tmp_path: Path) -> None:
    products = pages_of(books.root, "product", book_on_disk)
    # The spider follows every link of the listing pages and none of the product pages.
    graph = link_graph(books.root, "/", leaf=lambda path: path.startswith("/product/"))
    assert products.keys() <= graph.pages.keys(), "some products cannot be reached from the home page"

    out = tmp_path / "books.jsonl"
    cmd = cli_command("site_books.py", books, out, "--concurrency", "32", "-s", "concurrency_per_host=32")
    result = run_cli(cmd, tmp_path)
    assert result.returncode == 0, result.stderr

    # Exactly one item per product page, each equal to what the page offers.
    items = by_path(read_jsonl(out), books)
    assert sorted(items) == sorted(products)
    assert differences(items, products) == {}

    # Every reachable page fetched once from the mirror, and nothing else: no 404, no retry.
    assert books.pages_served() == Counter(graph.pages.keys())
    assert {(h.method, h.host, h.status) for h in books.hits if h.target != "/robots.txt"} == {
        ("GET", books.netloc, 200)
    }
    assert [(h.target, h.status) for h in books.hits if h.target == "/robots.txt"] == [("/robots.txt", 404)]

    # The summary counts the same pages. Every response crawlkit received came from the mirror, no
    # link led elsewhere, and nothing failed: no other host was asked for anything, not even for
    # its robots.txt. (This spider follows <a> links only: the stylesheet on the CDN and the search
    # form on another port are the offsite test's business, below.)
    stats = orjson.loads(out.with_suffix(".stats.json").read_bytes())
    assert stats["stop_reason"] == "finished"
    assert stats["pages"] == len(graph.pages) == sum(books.pages_served().values())
    assert stats["statuses"] == {"200": len(graph.pages)}
    assert (stats["pages_failed"], stats["failures"], stats["retries"]) == (0, {}, 0)
    assert stats["robots"] == {"missing": 1}
    assert stats["filtered"] == {}
    assert stats["items"] == len(products)
    assert summary_figure(result.stderr, "pages fetched").split()[0] == str(len(graph.pages))
    assert summary_figure(result.stderr, "items written") == str(len(products))
    assert summary_figure(result.stderr, "failures") == "0"
    assert (tmp_path / ".crawlkit" / "jobs" / "site_books" / "frontier.sqlite").is_file()  # durable


def test_books_allowed_domains_with_a_port_keeps_the_crawl_on_the_mirror(
    books: Mirror, tmp_path: Path
) -> None:
    # Every page, with the stylesheet it loads from the CDN and the search form to another port.
    graph = link_graph(books.root, "/")
    refs = [
        urljoin(ORIGIN + path, html.unescape(ref))
        for path, file in graph.pages.items()
        for ref in ASSET_REFS.findall(file.read_text("utf-8"))
    ]
    offsite = [ref for ref in refs if not ref.startswith(ORIGIN + "/")]
    assert any(urlsplit(ref).hostname == "127.0.0.1" for ref in offsite)  # the search form
    assert any(urlsplit(ref).hostname not in ("127.0.0.1", None) for ref in offsite)  # the CDN

    out = tmp_path / "pages.jsonl"
    settings = {"job_dir": str(tmp_path / "job"), "parse_workers": 2, "concurrency": 32}
    settings["concurrency_per_host"] = 32
    try:
        stats = crawl(BooksOffsiteSpider, out, settings=settings, handle_signals=False, base=books.base)
    except CrawlkitError as exc:  # refusing the entry, and saying why, would do too
        assert "allowed_domains" in str(exc) and books.netloc in str(exc)
        return
    assert sorted(path_of(item["url"], books) for item in read_jsonl(out)) == sorted(graph.pages)
    assert books.pages_served() == Counter(graph.pages.keys())
    assert stats.pages == len(graph.pages) and stats.ok
    assert stats.filtered == Counter({"offsite": len(offsite)})


# -- quotes -------------------------------------------------------------------------------------


def test_quotes_every_quote_and_each_author_once(quotes: Mirror, tmp_path: Path) -> None:
    graph = link_graph(quotes.root, "/")  # the spider follows every link
    authors = pages_of(quotes.root, "author", author_on_disk)
    assert authors.keys() <= graph.pages.keys()
    author_links = sum(graph.links[path] for path in authors)
    assert author_links > 2 * len(authors)  # each author is linked from many pages
    listings = {path: quotes_on_disk(file.read_text("utf-8")) for path, file in graph.pages.items()}
    listings = {path: found for path, found in listings.items() if found}
    # The paginated listing, counted from its files (page/N/index.html) whatever links to them.
    paginated = {
        q for f in quotes.root.glob("page/*/index.html") for q in quotes_on_disk(f.read_text("utf-8"))
    }
    assert paginated

    out = tmp_path / "quotes.jsonl"
    settings = {"job_dir": str(tmp_path / "job"), "parse_workers": 2, "concurrency": 16}
    settings["concurrency_per_host"] = 16
    stats = crawl(QuotesSpider, out, settings=settings, handle_signals=False, base=quotes.base)
    items = read_jsonl(out)

    # Every quote of every listing page (the paginated home page, the tag pages), as the files say.
    got: dict[str, Counter[tuple[str, str, tuple[str, ...]]]] = {}
    for item in items:
        if item["kind"] == "quote":
            found = (item["text"], item["author"], tuple(item["tags"]))
            got.setdefault(path_of(item["listing"], quotes), Counter())[found] += 1
    assert got.keys() == listings.keys()
    assert {p: c for p, c in got.items() if c != Counter(listings[p])} == {}
    from_pages = {q for p, c in got.items() if re.fullmatch(r"/page/\d+/index\.html", p) for q in c}
    assert from_pages == paginated  # every quote of the paginated listing, nothing else there

    # One item per author, as the author's page says, which was fetched once despite all the links.
    got_authors = by_path([item for item in items if item["kind"] == "author"], quotes)
    assert {p: {k: v for k, v in a.items() if k != "kind"} for p, a in got_authors.items()} == authors
    served = quotes.pages_served()
    assert {path: served[path] for path in authors} == dict.fromkeys(authors, 1)

    # Every page once, nothing off the site: the footer's links to goodreads.com and zyte.com
    # were filtered, one by one.
    assert served == Counter(graph.pages.keys())
    assert {h.status for h in quotes.hits if h.target != "/robots.txt"} == {200}
    assert graph.offsite
    assert stats.filtered == Counter({"offsite": len(graph.offsite)})
    assert stats.pages == len(graph.pages) and stats.ok and stats.retries == 0
    assert stats.items == len(items) == len(authors) + sum(len(found) for found in listings.values())
    assert stats.robots == Counter({"missing": 1})


# -- jobs: a crawl stopped with Ctrl-C and resumed ----------------------------------------------


@pytest.mark.slow
def test_jobs_stopped_by_sigint_then_resumed_writes_each_job_once(jobs: Mirror, tmp_path: Path) -> None:
    offers = pages_of(jobs.root, "job", job_on_disk)
    graph = link_graph(jobs.root, "/", leaf=lambda path: path.startswith("/job/"))
    assert offers.keys() <= graph.pages.keys()

    out = tmp_path / "jobs.jsonl"
    stats_file = out.with_suffix(".stats.json")
    # A short delay and frequent commits: the crawl lasts a few seconds, and writes as it goes.
    options = ["--concurrency", "16", "-s", "download_delay=0.001", "-s", "commit_interval=0.2"]
    cmd = cli_command("site_jobs.py", jobs, out, *options)
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with reaped(proc):
        wait_for_lines(out, 50, proc, interval=0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err  # a graceful stop
    assert summary_figure(err, "stopped because") == "SIGINT"
    first = read_jsonl(out)
    assert 0 < len(first) < len(offers), "the crawl was not stopped part-way"
    first_stats = orjson.loads(stats_file.read_bytes())
    first_served = jobs.pages_served()
    assert first_stats["pages"] == sum(first_served.values()) and first_stats["items"] == len(first)

    again = run_cli(cmd, tmp_path)  # the same command: the same job
    assert again.returncode == 0, again.stderr
    assert "resuming:" in again.stderr
    items = read_jsonl(out)
    assert items[: len(first)] == first  # what the first run wrote is kept as it was

    # Each job exactly once, as its page says.
    got = by_path(items, jobs)
    assert sorted(got) == sorted(offers)
    assert differences(got, offers) == {}

    # A graceful stop redoes nothing: the two runs fetched every page once between them.
    assert jobs.pages_served() == Counter(graph.pages.keys())
    assert {h.status for h in jobs.hits if h.target != "/robots.txt"} == {200}
    stats = orjson.loads(stats_file.read_bytes())
    assert stats["stop_reason"] == "finished"
    assert stats["pages"] == len(graph.pages) - first_stats["pages"]
    assert stats["items"] == len(offers) - len(first)
    assert (stats["pages_failed"], stats["failures"]) == (0, {})


def test_the_scrapy_tutorial_port_extracts_what_scrapy_would(quotes: Mirror, tmp_path: Path) -> None:
    # spiders/quotes.py is the Scrapy tutorial's spider, ported line by line in docs/from-scrapy.md.
    # What Scrapy extracts with its selectors is what the files hold: every quote of the paginated
    # listing, in the order of the pages, and each author linked from it once.
    port = load_spider(REPO_ROOT / "spiders" / "quotes.py")
    pages = ["index.html", *(f"page/{n}/index.html" for n in range(2, 11))]
    listed = [q for page in pages for q in quotes_on_disk((quotes.root / page).read_text("utf-8"))]
    assert len(listed) == 100
    about = re.compile(r'<small class="author"[^>]*>.*?</small>\s*<a href="([^"]+)"', re.S)
    linked = {
        urlsplit(urljoin(f"/{page}", href)).path
        for page in pages
        for href in about.findall((quotes.root / page).read_text("utf-8"))
    }
    authors = pages_of(quotes.root, "author", author_on_disk)

    out = tmp_path / "quotes.jsonl"
    settings = {"frontier": "memory", "parse_workers": 2, "obey_robots": False}
    stats = crawl(port, out, settings=settings, handle_signals=False, start_urls=[quotes.base + "/"])
    items = read_jsonl(out)

    got_quotes = [(i["text"], i["author"], tuple(i["tags"])) for i in items if "text" in i]
    assert Counter(got_quotes) == Counter(listed)
    got_authors = {i["name"]: i for i in items if "name" in i}
    assert len(got_authors) == len(items) - len(got_quotes) == len(linked)
    expected = {authors[path]["name"]: authors[path]["born_date"] for path in linked}
    assert {name: item["birthdate"] for name, item in got_authors.items()} == expected
    assert all(item["bio"] for item in got_authors.values())
    assert stats.ok and stats.pages == len(pages) + len(linked)
