"""A spider written the Scrapy way crawls a shop behind a login form, end to end.

A real aiohttp server on 127.0.0.1 (a CSRF token bound to a session cookie, a redirect after the
login, a JSON API), the real engine, the durable SQLite frontier and real parser workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from crawlkit import crawl
from crawlspiders.scrapy_style import LoginShopSpider
from support.loginshop import LoginShop, expected_item, product_ids


@pytest.fixture
def shop() -> Iterator[LoginShop]:
    server = LoginShop()
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("frontier", ["sqlite", "memory"])
def test_a_scrapy_style_spider_logs_in_and_extracts_every_product_once(
    shop: LoginShop, tmp_out: Path, frontier: str
) -> None:
    settings = {"frontier": frontier, "job_dir": str(tmp_out.parent / "job"), "parse_workers": 2}
    stats = crawl(LoginShopSpider, tmp_out, settings=settings, handle_signals=False, base=shop.base)
    items = [orjson.loads(line) for line in tmp_out.read_bytes().splitlines()]
    by_url = {item["url"]: item for item in items}
    assert len(items) == len(by_url) == len(product_ids())
    assert by_url == {f"{shop.base}/product/{pid}": expected_item(shop.base, pid) for pid in product_ids()}
    # One login, accepted: the token, the cookie, the checkbox, the select and the button all sent.
    assert len(shop.log) == 1 and shop.log[0].startswith("login ok"), shop.log
    assert stats.items == len(product_ids())
