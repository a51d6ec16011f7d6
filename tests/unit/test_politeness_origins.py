"""The politeness gate's origin of a URL: the same with the last one remembered as without it."""

from __future__ import annotations

import pytest
from yarl import URL

from crawlkit import CrawlStats
from crawlkit.fetch import CrawlHostPolicy, Politeness
from crawlkit.frontier import MemoryFrontier
from crawlkit.settings import load_settings


def _politeness() -> Politeness:
    settings = load_settings(environ={})
    policy = CrawlHostPolicy.from_settings(settings)
    return Politeness(settings, policy, MemoryFrontier(policy), CrawlStats())


def _expected(url: str) -> tuple[str, str]:
    parsed = URL(url)
    return str(parsed.origin()), parsed.host or ""


# Each URL after one whose origin is a prefix of its own text: a memo that compared prefixes
# alone would answer with the one before.
SEQUENCE = [
    "http://a.test/x",
    "http://a.test/y?q=1",
    "http://a.test",
    "http://a.test.evil.test/x",
    "http://a.test:8080/x",
    "http://a.test/x#f",
    "https://a.test/x",
    "http://user@a.test/x",
    "http://a.test/x",
    "http://A.test/x",
    "http://127.0.0.1:18731/catalogue/product-1.html",
    "http://127.0.0.1:1873/catalogue/product-1.html",
    "http://127.0.0.1:18731/catalogue/product-2.html",
    "http://a.test?q=1",
    "http://a.test#f",
    "HTTPS://A.TEST:443/x",
    "https://a.test:443/x",
]


@pytest.mark.parametrize("rounds", [1, 2])
def test_each_url_gets_its_own_origin_and_host(rounds: int) -> None:
    politeness = _politeness()
    for _ in range(rounds):  # the second time, every key is in the cache as well
        for url in SEQUENCE:
            assert politeness._origin(url) == _expected(url), url
