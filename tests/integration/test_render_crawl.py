"""Rendering inside real crawls: a real Chromium, the JS-built shop on 127.0.0.1, real parser workers.

Each crawl launches its own browser, as a crawl does (the session's browser lives in another
event loop): few tests, each covering much. After each, no process of that browser is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from crawlkit import crawl
from crawlkit.errors import ConfigError
from crawlkit.fetch._chromium_guard import OWNER_FLAG, _descendants
from crawlspiders.render_spiders import ProxiedProductSpider, RenderShopSpider
from support.browser import alive, require_browser
from support.forwardproxy import ForwardProxy
from support.procs import CRAWLKIT_EXE, TESTS_DIR, finish, subprocess_env, wait_for, wait_for_lines
from support.rendershop import PER_PAGE, PRODUCTS, RenderShop, product
from support.socksproxy import socks_proxy


@pytest.fixture(scope="module")
def shop() -> Iterator[RenderShop]:
    require_browser()
    server = RenderShop()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def guards_of(owner: int) -> list[int]:
    """The Chromium guards that crawl process ``owner`` started (see fetch/_chromium_guard.py)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(b"_chromium_guard" in a for a in args) and f"{OWNER_FLAG}{owner}".encode() in args:
            found.append(int(name))
    return found


def browser_tree(owner: int) -> list[int]:
    return sorted({pid for guard in guards_of(owner) for pid in (guard, *_descendants(guard))})


def read_items(out: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_a_rendering_crawl_finds_every_product_once(shop: RenderShop, tmp_path: Path) -> None:
    shop.log.clear()
    out = tmp_path / "items.jsonl"
    before = set(guards_of(os.getpid()))  # the session's browser, if a test started it
    stats = crawl(
        RenderShopSpider, out, base=shop.base, extras="1", settings={"job_dir": str(tmp_path / "job")}
    )

    items = read_items(out)
    products = [item for item in items if "id" in item]
    # Every product once: each list needed the browser (a click, a scroll), each page its script.
    assert sorted(Counter(item["id"] for item in products).items()) == [(i, 1) for i in range(PRODUCTS)]
    for item in products:
        assert item["name"] == f"Product {item['id']}"  # the rendered DOM, through the CSS selectors
        assert item["data"] == product(int(str(item["id"])))  # the evaluate step's result, in meta
    # The page that never loads failed alone, with its reason (max_retries=0: not retried).
    assert stats.failures == {"render_timeout": 1}
    assert stats.renders == PRODUCTS + 3  # the lists, the products and /echo; /hang did not render
    # Not one image or font reached the server: they were blocked, and counted.
    assert not [p for p in shop.log if p.startswith(("/static/big.jpg", "/static/font"))]
    assert stats.render_blocked["image"] >= PRODUCTS and stats.render_blocked["font"] >= PRODUCTS
    assert "pages rendered" in stats.summary()
    # Cookies both ways: the crawl's reached the render; the page's reached a plain request after it.
    echoes = {item["echo"]: item["cookies"] for item in items if "echo" in item}
    assert echoes == {"rendered": {"sid": "abc"}, "plain": {"sid": "abc", "seen": "1"}}
    assert shop.log.count("/api/echo") == 2  # once by the page's script, once by aiohttp
    # The screenshot, beside the output, named by the request's fingerprint.
    (shot,) = [str(item["screenshot"]) for item in products if item["screenshot"]]
    assert Path(shot).parent == tmp_path / "items-render"
    assert Path(shot).read_bytes().startswith(b"\x89PNG")
    # The browser was closed with the crawl.
    assert set(guards_of(os.getpid())) == before


def test_kill_9_of_a_rendering_crawl_resumes_exactly_once_and_leaves_no_browser(
    shop: RenderShop, tmp_path: Path
) -> None:
    spider = tmp_path / "slow_render_shop.py"
    spider.write_text(
        "from crawlspiders.render_spiders import SlowRenderShopSpider\n\n\n"
        "class KillMe(SlowRenderShopSpider):\n    name = 'kill_me'\n"
    )
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    cmd = [
        str(CRAWLKIT_EXE), "runspider", str(spider), "-o", str(out), "--job-dir", str(job),
        "-a", f"base={shop.base}", "--log-level", "WARNING",
    ]  # fmt: skip
    expected = PER_PAGE * 3  # the button's list

    def run() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            cmd, cwd=TESTS_DIR, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    proc = run()
    wait_for_lines(out, 5, proc, timeout=120)
    tree = browser_tree(proc.pid)
    assert tree, "the crawl runs no browser"
    time.sleep(0.3)  # past a checkpoint, with renders in flight
    proc.send_signal(signal.SIGKILL)
    code, _ = finish(proc, timeout=30)
    assert code == -signal.SIGKILL
    # Its Chromium went with it: the guard saw the crawl die and killed the browser's whole tree.
    wait_for(lambda: not alive(tree), 15, "the killed crawl's Chromium processes to end")
    written = len(read_items(out))
    assert 0 < written < expected, "killed too late to test a resume"

    resumed = run()
    code, err = finish(resumed, timeout=180)
    assert code == 0, err
    ids = Counter(item["id"] for item in read_items(out))
    assert sorted(ids.items()) == [(i, 1) for i in range(expected)]  # every product exactly once
    assert not browser_tree(resumed.pid)


def test_fetch_and_shell_show_what_the_browser_saw(shop: RenderShop, tmp_path: Path) -> None:
    page = shop.url("/product/5")
    fetched = subprocess.run(
        [str(CRAWLKIT_EXE), "fetch", page, "--render", "--wait-for", "h1.ready"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert '<h1 class="ready">Product 5</h1>' in fetched.stdout  # put there by the page's script
    assert "the DOM after rendering; 2 requests of the page blocked" in fetched.stderr
    script = (
        "print('h1:', response.css_first('h1').text())\n"
        f"page = fetch({shop.url('/product/6')!r})\n"
        "print('again:', response.css_first('h1').text(), page is response)\n"
    )
    shell = subprocess.run(
        [str(CRAWLKIT_EXE), "shell", page, "--render", "--wait-for", "h1.ready"],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr
    assert "h1: Product 5" in shell.stdout
    assert "again: Product 6 True" in shell.stdout  # rendered too, with the same wait_for
    # Without --render the page is the server's HTML: an empty h1 that only a script fills.
    plain = subprocess.run([str(CRAWLKIT_EXE), "fetch", page], capture_output=True, text=True, timeout=60)
    assert "<h1></h1>" in plain.stdout


def test_a_render_goes_through_its_sessions_proxy_with_the_credentials_kept_from_the_site(
    shop: RenderShop, tmp_path: Path
) -> None:
    # The same identity over HTTP and in the browser: with proxies set, sessions are on, and a
    # rendered page goes out through its session's proxy, which alone gets the credentials.
    proxy = ForwardProxy(auth=("alice", "s3cret"))
    proxy.start()
    try:
        shop.log.clear()
        shop.header_names.clear()
        out = tmp_path / "items.jsonl"
        settings = {
            "job_dir": str(tmp_path / "job"),
            "proxies": [proxy.url_with_credentials("alice", "s3cret")],
            "obey_robots": False,
        }
        stats = crawl(ProxiedProductSpider, out, base=shop.base, settings=settings)
    finally:
        proxy.stop()
    items = read_items(out)
    assert sorted(str(item["name"]) for item in items) == [f"Product {i}" for i in range(3)]
    assert stats.renders == 3
    through = {seen.target for seen in proxy.seen}
    assert {f"{shop.base}/product/{i}" for i in range(3)} <= through  # the documents, proxied
    assert shop.header_names and not any("proxy-authorization" in names for names in shop.header_names)


def test_a_render_goes_through_a_socks_proxy_but_not_one_with_credentials(
    shop: RenderShop, tmp_path: Path
) -> None:
    # socks5h:// is no scheme Chromium knows: it gets socks5://, which it resolves at the proxy.
    settings = {"job_dir": str(tmp_path / "job"), "obey_robots": False}
    with socks_proxy(source="127.0.0.2") as proxy:
        out = tmp_path / "items.jsonl"
        more = {**settings, "proxies": [proxy.url("socks5h")]}
        stats = crawl(ProxiedProductSpider, out, base=shop.base, settings=more)
        seen = proxy.seen
    items = read_items(out)
    assert sorted(str(item["name"]) for item in items) == [f"Product {i}" for i in range(3)]
    assert stats.renders == 3 and seen and all(h.allowed and h.port == shop.port for h in seen)
    # Chromium cannot authenticate to a SOCKS proxy: said before the crawl starts.
    with socks_proxy(auth=("alice", "s3cret")) as proxy:
        more = {
            **settings,
            "job_dir": str(tmp_path / "job2"),
            "proxies": [proxy.url_with_credentials("alice", "s3cret")],
        }
        with pytest.raises(ConfigError, match="Chromium cannot authenticate to a SOCKS proxy") as caught:
            crawl(ProxiedProductSpider, tmp_path / "none.jsonl", base=shop.base, settings=more)
    assert "s3cret" not in str(caught.value)
