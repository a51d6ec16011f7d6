"""A challenge page under a 200, crawled directly: told in the parser worker, acted on as before.

On a direct attempt with no session, cache or CAPTCHA solver, the classifier leaves its look into
a 200's first bytes to the parser worker, which inflates the body anyway. What the crawl does
must not change: the page is failed as ``blocked`` (its errback called), never parsed, counted
by vendor; a spider with ``handle_blocked`` sees it; an ordinary page with a CAPTCHA widget is
parsed. Real crawls, a real server on 127.0.0.1, real parser worker processes.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from crawlkit import Blocked, Failure, Request, Response, Spider, crawl
from crawlkit.parsing import InlineParser, ParseOutcome, ParseTask, WorkerConfig
from crawlkit.spider import ref_for_class
from support.misbehaving import serve

CHALLENGES = Path(__file__).parent.parent / "fixtures" / "challenges"
# path -> (fixture, gzipped): challenge pages under a 200, and ordinary pages
PAGES = {
    "/cf": ("cloudflare_js", True),
    "/cf-plain": ("cloudflare_js", False),
    "/dd": ("datadome", True),
    "/turnstile": ("turnstile_gate", True),
    "/contact": ("ordinary_contact_recaptcha", True),
    "/cf-site": ("ordinary_cloudflare_site", False),
}
BLOCKED = {"/cf": "cloudflare", "/cf-plain": "cloudflare", "/dd": "datadome", "/turnstile": "turnstile"}


def _page(path: str) -> Any:
    name, gzipped = PAGES[path]
    body = (CHALLENGES / f"{name}.html").read_bytes()

    async def handler(request: web.Request) -> web.Response:
        headers = {"Content-Type": "text/html; charset=utf-8"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=gzip.compress(body), headers=headers)
        return web.Response(body=body, headers=headers)

    return handler


class ChallengedSpider(Spider):
    name = "challenged"
    base = ""
    custom_settings = {"obey_robots": False, "parse_workers": 1, "frontier": "memory", "concurrency": 4}

    def start_requests(self) -> Iterator[Request]:
        for path in PAGES:
            yield Request(self.base + path, errback=self.failed)

    def parse(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"parsed": response.url}

    def failed(self, failure: Failure) -> Iterator[dict[str, Any]]:
        error = failure.value
        assert isinstance(error, Blocked)
        yield {"failed": failure.request.url, "vendor": error.rule, "status": error.status}


class ShownSpider(ChallengedSpider):
    name = "challenged_shown"
    handle_blocked = True


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve([web.get(path, _page(path)) for path in PAGES]) as server:
        yield server.base


def read(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_a_challenge_page_under_a_200_fails_as_blocked_and_goes_to_the_errback(
    site: str, tmp_path: Path
) -> None:
    out = tmp_path / "items.jsonl"
    stats = crawl(ChallengedSpider, out, handle_signals=False, base=site)
    items = read(out)
    assert sorted(item["parsed"] for item in items if "parsed" in item) == [
        site + "/cf-site",
        site + "/contact",
    ]
    failed = {item["failed"]: (item["vendor"], item["status"]) for item in items if "failed" in item}
    assert failed == {site + path: (vendor, 200) for path, vendor in BLOCKED.items()}
    assert stats.blocks == {"cloudflare": 2, "datadome": 1, "turnstile": 1}
    assert stats.failures == {"blocked": 4}
    assert stats.parsed == 2 and stats.pages == len(PAGES)


def test_a_spider_that_handles_blocks_parses_them_and_they_are_counted(site: str, tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    stats = crawl(ShownSpider, out, handle_signals=False, base=site)
    assert sorted(item["parsed"] for item in read(out)) == sorted(site + path for path in PAGES)
    assert stats.blocks == {"cloudflare": 2, "datadome": 1, "turnstile": 1}
    assert not stats.failures


@pytest.mark.parametrize(("challenge", "runs"), [(0, True), (1, False), (2, True)])
def test_the_parser_reports_a_challenge_page_it_was_asked_to_look_for(challenge: int, runs: bool) -> None:
    parser = InlineParser(WorkerConfig(ref_for_class(ChallengedSpider), {}, True, 10_000_000, "WARNING"))
    body = gzip.compress((CHALLENGES / "datadome.html").read_bytes())
    request = Request("http://127.0.0.1:1/dd")
    task = ParseTask(
        request, request.url, 200, [("Content-Type", "text/html")], body, "gzip", None, challenge
    )

    async def run() -> ParseOutcome:
        await parser.start()
        return await parser.parse(task)

    outcome = asyncio.run(run())
    assert outcome.blocked == ("datadome" if challenge else None)
    assert bool(outcome.items) is runs
