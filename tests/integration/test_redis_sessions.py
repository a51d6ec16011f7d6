"""A shared (Redis) crawl's workers share one pool of sessions: real worker processes, a real
redis-server, real forward proxies on 127.0.0.1 and a site that defends itself
(``support.defendedsite``: a visitor is a cookie seen through one proxy, banned with a 403
challenge page after a few pages). Each worker sends its name in an ``X-Worker`` header (its
``default_headers``, not part of any session), so the site knows which worker sent what.
"""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from crawlkit.core._shared import job_status
from crawlkit.frontier.redis import job_prefix
from support import procs
from support.defendedsite import DefendedSite, Visit, defended_site
from support.forwardproxy import forward_proxy

SPIDERS = Path(__file__).parent.parent / "crawlspiders" / "identity_spiders.py"
CRAWLKIT = [sys.executable, "-m", "crawlkit"]
finish = functools.partial(procs.finish, timeout=120)


@pytest.fixture
def proxies() -> Iterator[list[str]]:
    with forward_proxy(name="proxy-one") as one, forward_proxy(name="proxy-two") as two:
        yield [one.url, two.url]


def worker(
    site: DefendedSite, proxy_urls: list[str], out: Path, url: str, job: str, name: str, *extra: str
) -> list[str]:
    return [
        *CRAWLKIT, "runspider", str(SPIDERS), "-o", str(out), "--frontier", url,
        "-a", f"base={site.url('')}", "-s", f"job_name={job}", "-s", f"worker_id={name}",
        "-s", f"proxies={json.dumps(proxy_urls)}", "-s", f"default_headers={json.dumps({'X-Worker': name})}",
        "-s", "parse_workers=1", "--concurrency", "2", "-s", "commit_interval=0.2",
        "-s", "download_delay=0.05", "-s", "max_session_rotations=20", "-s", "progress=off",
        "--log-level", "WARNING", *extra,
    ]  # fmt: skip


def export(url: str, job: str, tmp_path: Path) -> list[dict[str, object]]:
    merged = tmp_path / "all.jsonl"
    done = subprocess.run(
        [*CRAWLKIT, "export", job, "-o", str(merged), "--frontier", url],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    return [orjson.loads(line) for line in merged.read_bytes().splitlines()]


def assert_every_page_once(items: list[dict[str, object]], site: DefendedSite) -> None:
    assert Counter(item["url"] for item in items) == {site.url(f"/page/{n}"): 1 for n in range(site.pages)}


def issued_by(visits: list[Visit]) -> dict[str, str]:
    """Each visitor cookie, and the worker whose request earned it."""
    return {v.issued: v.worker for v in visits if v.issued is not None}


def handed_on(visits: list[Visit], from_worker: str, to_worker: str) -> set[str]:
    """Visitor cookies earned through one worker and sent by another."""
    earned = issued_by(visits)
    return {v.sent for v in visits if v.sent and v.worker == to_worker and earned[v.sent] == from_worker}


def assert_no_retired_session_used_elsewhere(visits: list[Visit]) -> None:
    """Once a visitor was challenged (its session retired by the worker that saw it), no other
    worker sends it again."""
    challenged_by: dict[tuple[str, str], str] = {}
    for visit in visits:
        if visit.sent is None:
            continue
        pair = (visit.via, visit.sent)
        first = challenged_by.get(pair)
        assert first in (None, visit.worker), f"{pair} sent by {visit.worker} after {first} retired it"
        if visit.challenged and first is None:
            challenged_by[pair] = visit.worker
    assert challenged_by, "no session was retired: the test proves nothing"


@pytest.mark.slow
def test_workers_share_the_pool_and_a_retired_session_is_never_used_again(
    proxies: list[str], redis_url: str, redis_job: str, tmp_path: Path
) -> None:
    out = tmp_path / "parts"
    with defended_site(140, ban_after=20, captcha_every=None) as site:
        first = procs.start(worker(site, proxies, out, redis_url, redis_job, "A"), tmp_path)
        procs.wait_for_lines(out / "part-A.jsonl", 3, first)  # A alone holds the whole pool
        second = procs.start(worker(site, proxies, out, redis_url, redis_job, "B"), tmp_path)
        for proc in (first, second):
            code, err = finish(proc)
            assert code == 0, err
        visits = list(site.visits)
    assert_every_page_once(export(redis_url, redis_job, tmp_path), site)
    # B joined and got its share of the live pool: sessions A had made, with the visitor
    # cookies the site gave them through A, so B was the same visitors, not new ones.
    assert handed_on(visits, "A", "B"), "no session went from A to B with its cookies"
    assert {v.worker for v in visits if not v.challenged} == {"A", "B"}
    assert_no_retired_session_used_elsewhere(visits)
    assert site.direct == 0
    # The pool's size (two sessions per proxy) held for both workers together, and each
    # retirement was counted once for the crawl.
    pool = redis.Redis.from_url(redis_url)
    try:
        prefix = job_prefix(redis_job)
        assert pool.hlen(prefix + "s:live") <= 4
        assert int(pool.hget(prefix + "s:retired", "blocked") or 0) >= len(
            {(v.via, v.sent) for v in visits if v.challenged}
        )
    finally:
        pool.close()


@pytest.mark.slow
def test_a_killed_workers_sessions_come_back_to_the_others(
    proxies: list[str], redis_url: str, redis_job: str, tmp_path: Path
) -> None:
    out = tmp_path / "parts"
    ttl = ("-s", "lease_ttl=1.5")
    with defended_site(150, ban_after=None, captcha_every=None) as site:
        victim = procs.start(worker(site, proxies, out, redis_url, redis_job, "A", *ttl), tmp_path)
        procs.wait_for_lines(out / "part-A.jsonl", 10, victim)
        other = procs.start(worker(site, proxies, out, redis_url, redis_job, "B", *ttl), tmp_path)
        procs.wait_for_lines(out / "part-B.jsonl", 5, other)
        victim.send_signal(signal.SIGKILL)
        assert finish(victim)[0] == -signal.SIGKILL
        code, err = finish(other)
        assert code == 0, err
        visits = list(site.visits)
    assert_every_page_once(export(redis_url, redis_job, tmp_path), site)
    assert job_status(redis_url, redis_job).finished
    # Nothing was banned, so no session was retired. The sessions A held when it was killed came
    # back to B when their leases expired, with the cookies the site had given them: B went on
    # as those visitors, and the site met no new visitor after the kill.
    killed_at = max(i for i, v in enumerate(visits) if v.worker == "A")
    before = visits[: killed_at + 1]
    # What A still held: the visitors it had been, less those it gave B when B joined.
    held_by_a = {v.sent for v in before if v.worker == "A"} - {v.sent for v in before if v.worker == "B"}
    held_by_a.discard(None)
    sent_by_b_after = {v.sent for v in visits[killed_at + 1 :] if v.worker == "B"}
    assert held_by_a and held_by_a <= sent_by_b_after, "B did not go on with A's sessions"
    assert not any(v.issued for v in visits[killed_at + 1 :])


@pytest.mark.slow
def test_a_resumed_job_keeps_its_pool_whatever_its_workers_are_called(
    proxies: list[str], redis_url: str, redis_job: str, tmp_path: Path
) -> None:
    out = tmp_path / "parts"
    with defended_site(100, ban_after=None, captcha_every=None) as site:
        fast = ("-s", "download_delay=0.01")
        first = procs.start(worker(site, proxies, out, redis_url, redis_job, "A", *fast), tmp_path)
        procs.wait_for_lines(out / "part-A.jsonl", 10, first)
        first.send_signal(signal.SIGINT)  # stopped: it gives its sessions back to the pool
        code, err = finish(first)
        assert code == 3, err
        issued = list(site.issued)
        served = len(site.visits)
        # Resumed by a worker of another id: the job's pool is its, cookies included.
        code, err = finish(
            procs.start(worker(site, proxies, out, redis_url, redis_job, "C", *fast), tmp_path)
        )
        assert code == 0, err
        visits = list(site.visits)
    assert_every_page_once(export(redis_url, redis_job, tmp_path), site)
    assert len(visits) > served and site.issued == issued  # the same visitors, none new
    assert {v.sent for v in visits[served:]} <= set(issued)
