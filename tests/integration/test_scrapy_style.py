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


def test_the_login_password_appears_in_no_log_and_no_stats(tmp_path: Path) -> None:
    # The login's POST is answered 503 twice, so it is retried and logged: the log must name it,
    # and hold its password nowhere, nor may the stats file.
    import subprocess
    import sys

    from support import procs

    spider_file = Path(__file__).parent.parent / "crawlspiders" / "scrapy_style.py"
    stats_file = tmp_path / "stats.json"
    cmd = [
        sys.executable, "-m", "crawlkit", "runspider", str(spider_file), "-o", str(tmp_path / "out.jsonl"),
        "--frontier", "memory", "-a", "base=BASE", "--log-level", "DEBUG",
        "--stats-file", str(stats_file), "--progress", "log",
    ]  # fmt: skip
    shop = LoginShop(busy_logins=2)
    shop.start()
    cmd[cmd.index("base=BASE")] = f"base={shop.base}"
    try:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=procs.subprocess_env(), stderr=subprocess.PIPE)
        code, err = procs.finish(proc, timeout=120)
    finally:
        shop.stop()
    assert code == 0, err
    assert shop.log and shop.log[0].startswith("login ok")  # the password did reach the site
    assert err.count("retrying " + shop.base + "/login") == 2  # the login request is in the log...
    assert "s3cret" not in err  # ...and its password is not
    assert "s3cret" not in stats_file.read_text()
