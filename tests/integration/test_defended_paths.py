"""Real crawls of the defended-web settings that are otherwise only validated: ``on_no_proxy =
"stop"``, ``identities = "browser"`` and ``block_rules`` written in a settings file."""

from __future__ import annotations

import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from support import procs
from support.defendedsite import defended_site
from support.forwardproxy import down_proxy_url, forward_proxy
from support.misbehaving import Server, serve

SPIDERS = Path(__file__).parent.parent / "crawlspiders" / "identity_spiders.py"
EXIT_OK, EXIT_STOPPED = 0, 3  # docs/operations.md


def read(out: Path) -> list[dict[str, Any]]:
    data = out.read_bytes() if out.exists() else b""
    assert data == b"" or data.endswith(b"\n"), "the output ends in a partial line"
    return [orjson.loads(line) for line in data.splitlines()]


def runspider(base: str, out: Path, job: Path, *settings: str) -> list[str]:
    cmd = [
        sys.executable, "-m", "crawlkit", "runspider", str(SPIDERS), "-o", str(out), "--job-dir", str(job),
        "-a", f"base={base}", "--concurrency", "2", "-s", "parse_workers=1", "-s", "commit_interval=0.1",
        "-s", "retry_backoff_base=0.01", "--log-level", "WARNING",
    ]  # fmt: skip
    for setting in settings:
        cmd += ["-s", setting]
    return cmd


# -- on_no_proxy = "stop" ---------------------------------------------------------------------


def test_every_proxy_down_stops_the_crawl_resumably_and_a_working_proxy_finishes_it(tmp_path: Path) -> None:
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    pages = 30
    with defended_site(pages, ban_after=None, captcha_every=None) as site:
        down = [down_proxy_url(), down_proxy_url()]
        cmd = runspider(site.url(""), out, job, f"proxies={','.join(down)}", "on_no_proxy=stop")
        code, err = procs.finish(procs.start(cmd, tmp_path), timeout=60)
        # Stopped as a signal stops a crawl: the documented code, a clear message, the next step.
        assert code == EXIT_STOPPED, err
        assert "every proxy is resting after errors; stopping (on_no_proxy = 'stop')" in err
        assert "stopped because" in err and "no proxy available" in err
        assert "run the same command again" in err
        # robots.txt could not be asked for: unknown, not taken as "everything allowed".
        assert "as if it allowed everything" not in err
        assert read(out) == [] and site.direct == 0 and sum(site.seen.values()) == 0
        with forward_proxy(name="proxy-back") as proxy:
            resumed = runspider(site.url(""), out, job, f"proxies={proxy.url}", "on_no_proxy=stop")
            code, err = procs.finish(procs.start(resumed, tmp_path), timeout=120)
        assert code == EXIT_OK, err
    items = read(out)
    assert Counter(item["url"] for item in items) == {site.url(f"/page/{n}"): 1 for n in range(pages)}
    assert site.direct == 0


def test_with_the_http_cache_robots_txt_still_goes_through_the_proxy(tmp_path: Path) -> None:
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    with (
        forward_proxy(name="proxy-one") as proxy,
        defended_site(10, ban_after=None, captcha_every=None) as site,
    ):
        cmd = [*runspider(site.url(""), out, job, f"proxies={proxy.url}"), "--cache"]
        code, err = procs.finish(procs.start(cmd, tmp_path), timeout=120)
        assert code == EXIT_OK, err
        assert any(seen.target.endswith("/robots.txt") for seen in proxy.seen)
    assert site.direct == 0  # not even robots.txt: a crawl behind a proxy never shows its address
    assert len(read(out)) == 10


# -- identities = "browser" -----------------------------------------------------------------


class HeaderSite:
    """Records the browser headers of each visitor (its cookie); robots.txt forbids /private/."""

    HEADERS = ("user-agent", "sec-ch-ua", "sec-ch-ua-platform", "accept-language")

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self._lock = threading.Lock()
        self._visitors = 0
        self.profiles: defaultdict[str, set[tuple[str | None, ...]]] = defaultdict(set)
        self.requests: Counter[str] = Counter()  # by path
        self.server: Server | None = None

    async def handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self.requests[request.path] += 1
            visitor = request.cookies.get("visitor")
            new = None
            if visitor is None:
                self._visitors += 1
                new = visitor = f"v{self._visitors}"
            self.profiles[visitor].add(tuple(request.headers.get(name) for name in self.HEADERS))
        if request.path == "/robots.txt":
            response = web.Response(text="User-agent: *\nDisallow: /private/\n")
        elif request.path == "/list":
            links = [f"/page/{n}" for n in range(self.pages)] + ["/private/1", "/private/2"]
            anchors = "".join(f'<a href="{href}">{href}</a>' for href in links)
            response = web.Response(text=f"<title>list</title>{anchors}", content_type="text/html")
        else:
            response = web.Response(text=f"<title>{request.path}</title>", content_type="text/html")
        if new is not None:
            response.set_cookie("visitor", new, path="/")
        return response


@contextmanager
def header_site(pages: int) -> Iterator[HeaderSite]:
    site = HeaderSite(pages)
    routes = [web.get(path, site.handle) for path in ("/robots.txt", "/list", "/page/{n}", "/private/{n}")]
    with serve(routes) as server:
        site.server = server
        yield site


def test_browser_identities_give_each_session_one_consistent_browser(tmp_path: Path) -> None:
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    pages = 40
    with header_site(pages) as site:
        assert site.server is not None
        cmd = runspider(
            site.server.base, out, job, "sessions=on", "identities=browser", "session_pool_size=4",
            "session_max_uses=8",
        )  # fmt: skip
        code, err = procs.finish(procs.start(cmd, tmp_path), timeout=120)
    assert code == EXIT_OK, err
    items = read(out)
    assert Counter(item["url"] for item in items) == {site.server.url(f"/page/{n}"): 1 for n in range(pages)}
    # robots.txt was read and obeyed: the forbidden pages were never asked for.
    assert site.requests["/robots.txt"] == 1
    assert not any(path.startswith("/private/") for path in site.requests)
    # A session is a visitor (its own cookie): every request it made carried one browser's
    # headers, a real browser's (client hints and a language), the same each time.
    sessions = {visitor: seen for visitor, seen in site.profiles.items() if len(seen) > 0}
    assert len(sessions) >= 5  # four live at once, and more after session_max_uses
    for visitor, seen in sessions.items():
        assert len(seen) == 1, (visitor, seen)
        user_agent, client_hints, platform, language = next(iter(seen))
        assert user_agent and user_agent.startswith("Mozilla/5.0 ") and language == "en-US,en;q=0.9"
        assert not any(word in user_agent.lower() for word in ("crawlkit", "compatible;", "bot"))
        if client_hints is not None:  # a Chromium browser's, of the version its user agent says
            assert f'v="{user_agent.split("Chrome/")[1].split(".")[0]}"' in client_hints, user_agent
            assert platform
    assert len({next(iter(seen)) for seen in sessions.values()}) > 1  # sessions differ


# -- block_rules from a settings file -----------------------------------------------------------

PYPROJECT = """
[tool.crawlkit]
frontier = "memory"
parse_workers = 1
block_rules = [
    { label = "blocked", statuses = [418], name = "teapot" },
    { label = "blocked", pattern = "Our shop is for humans", name = "shop_wall" },
    { label = "blocked", selector = "form#prove-it", name = "shop_form" },
]
"""


async def _ruled(request: web.Request) -> web.Response:
    n = int(request.match_info.get("n", "-1"))
    if request.path == "/robots.txt":
        return web.Response(text="User-agent: *\nAllow: /\n")
    if request.path == "/list":
        anchors = "".join(f'<a href="/page/{i}">{i}</a>' for i in range(12))
        return web.Response(text=f"<title>list</title>{anchors}", content_type="text/html")
    if n % 4 == 1:
        return web.Response(status=418, text=f"<title>page {n}</title>", content_type="text/html")
    if n % 4 == 2:
        body = f"<title>page {n}</title><p>Our shop is for humans. Come back later.</p>"
        return web.Response(text=body, content_type="text/html")
    if n % 4 == 3:
        body = f'<title>page {n}</title><form id="prove-it"><input name="x"></form>'
        return web.Response(text=body, content_type="text/html")
    return web.Response(text=f"<title>page {n}</title>", content_type="text/html")


def test_block_rules_written_in_pyproject_make_their_pages_blocks_never_items(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    out, stats_file = tmp_path / "items.jsonl", tmp_path / "stats.json"
    routes = [web.get(path, _ruled) for path in ("/robots.txt", "/list", "/page/{n}")]
    with serve(routes) as site:
        cmd = [
            sys.executable, "-m", "crawlkit", "runspider", str(SPIDERS), "-o", str(out),
            "-a", f"base={site.base}", "--stats-file", str(stats_file), "--log-level", "WARNING",
        ]  # fmt: skip
        code, err = procs.finish(procs.start(cmd, tmp_path), timeout=120)
    assert code == 1, err  # pages failed (as blocked): the crawl says so
    items = read(out)
    assert {item["url"] for item in items} == {site.url(f"/page/{n}") for n in range(0, 12, 4)}
    stats = orjson.loads(stats_file.read_bytes())
    assert stats["blocks"] == {"teapot": 3, "shop_wall": 3, "shop_form": 3}
    assert stats["failures"] == {"blocked": 9}
