"""The settings schema: every setting, its type, its default and its documentation.

The field metadata holds the text that ``docs/settings.md`` and the README's table are built from
(``settings_reference``); the checks a value must pass are in ``_validate``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .._version import __version__
from ._validate import validate

__all__ = ["DEFAULT_RETRY_HTTP_CODES", "DEFAULT_USER_AGENT", "Settings"]

DEFAULT_USER_AGENT = f"crawlkit/{__version__}"
DEFAULT_RETRY_HTTP_CODES = (408, 429, 500, 502, 503, 504, 522, 524)


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of a crawl. Field metadata holds the documentation the reference is built from."""

    concurrency: int = dataclasses.field(
        default=16,
        metadata=_doc(
            "Requests in flight at once, across all hosts: being fetched or parsed (a parsed page's "
            "commit does not count)."
        ),
    )
    concurrency_per_host: int = dataclasses.field(
        default=8, metadata=_doc("Requests being fetched at once from one host.")
    )
    download_delay: float = dataclasses.field(
        default=0.0,
        metadata=_doc(
            "Seconds between the starts of two requests to one host, jittered 0.5x-1.5x (0: none)."
        ),
    )
    parse_workers: int = dataclasses.field(
        default=-1,
        metadata=_doc(
            "Parser worker processes; -1 means one per CPU core, 0 runs callbacks inline "
            "in the main process (for debugging)."
        ),
    )
    parse_batch_size: int = dataclasses.field(
        default=16, metadata=_doc("Most responses sent to a parser worker in one message.")
    )
    depth_limit: int = dataclasses.field(
        default=0, metadata=_doc("Deepest link depth followed from a start URL (0: no limit).")
    )
    max_retries: int = dataclasses.field(
        default=3, metadata=_doc("Retries after the first attempt, for retryable failures.")
    )
    retry_http_codes: list[int] = dataclasses.field(
        default_factory=lambda: list(DEFAULT_RETRY_HTTP_CODES),
        metadata=_doc("HTTP status codes that are retried."),
    )
    retry_backoff_base: float = dataclasses.field(
        default=0.5, metadata=_doc("First retry delay in seconds; doubles each attempt, jittered.")
    )
    retry_backoff_max: float = dataclasses.field(
        default=30.0, metadata=_doc("Longest computed retry delay in seconds.")
    )
    retry_after_max: float = dataclasses.field(
        default=120.0, metadata=_doc("Longest Retry-After delay honoured, in seconds.")
    )
    connect_timeout: float = dataclasses.field(default=10.0, metadata=_doc("Seconds to open a connection."))
    read_timeout: float = dataclasses.field(
        default=30.0, metadata=_doc("Seconds to wait between two reads of a response.")
    )
    download_timeout: float = dataclasses.field(
        default=60.0, metadata=_doc("Seconds for a whole request, connection to last byte.")
    )
    max_response_size: int = dataclasses.field(
        default=32 * 1024 * 1024,
        metadata=_doc("Largest body accepted, in bytes, compressed or not (0: no limit)."),
    )
    max_redirects: int = dataclasses.field(
        default=20, metadata=_doc("Redirects followed for one request before it fails.")
    )
    verify_tls: bool = dataclasses.field(
        default=True,
        metadata=_doc("Verify TLS certificates; a spider may turn it off in its custom_settings."),
    )
    obey_robots: bool = dataclasses.field(
        default=True,
        metadata=_doc(
            "Fetch each host's robots.txt once and skip what it disallows; its Crawl-delay is honoured."
        ),
    )
    robots_user_agent: str = dataclasses.field(
        default="",
        metadata=_doc(
            "The name matched against robots.txt User-agent lines; empty: the product token of "
            "user_agent (crawlkit)."
        ),
    )
    host_rules: dict[str, dict[str, Any]] = dataclasses.field(
        default_factory=dict,
        metadata=_doc(
            'Per-host limits by glob, first match wins: {"*.example.com": {"concurrency": 2, '
            '"delay": 1.0}}; other hosts get concurrency_per_host and download_delay.'
        ),
    )
    autothrottle: bool = dataclasses.field(
        default=True,
        metadata=_doc(
            "Adapt each host's delay to its response times, and rest a host that answers 429 or "
            "503 (for its Retry-After), then speed up again gradually."
        ),
    )
    autothrottle_target_concurrency: float = dataclasses.field(
        default=0.0,
        metadata=_doc(
            "Requests the adaptive delay aims to keep in flight to one host: the delay is "
            "latency / this (0: the host's concurrency limit)."
        ),
    )
    autothrottle_max_delay: float = dataclasses.field(
        default=60.0, metadata=_doc("Longest delay adaptive throttling gives a host, in seconds.")
    )
    close_after_items: int = dataclasses.field(
        default=0, metadata=_doc("Stop cleanly once this many items are written (0: never).")
    )
    close_after_pages: int = dataclasses.field(
        default=0, metadata=_doc("Stop cleanly once this many responses are received (0: never).")
    )
    close_after_errors: int = dataclasses.field(
        default=0, metadata=_doc("Stop cleanly once this many pages or items failed (0: never).")
    )
    close_after_seconds: float = dataclasses.field(
        default=0.0, metadata=_doc("Stop cleanly after this many seconds of crawling (0: never).")
    )
    user_agent: str = dataclasses.field(
        default=DEFAULT_USER_AGENT, metadata=_doc("The User-Agent header sent with every request.")
    )
    default_headers: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en",
        },
        metadata=_doc(
            "Headers sent with every request unless the request sets them. An `Authorization` "
            "here is not sent with a request whose URL holds a user name and password "
            "(`https://user:pass@host/`): the URL's, more specific, wins."
        ),
    )
    redact_headers: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc(
            "More header names whose values are credentials: shown as `***` in logs, errors and "
            "`crawlkit fetch --headers`, besides `Authorization`, `Cookie`, `Set-Cookie`, "
            "`X-API-Key`, `X-Auth-Token` and the rest of the built-in list (docs/operations.md)."
        ),
    )
    dns_cache_ttl: int = dataclasses.field(default=300, metadata=_doc("Seconds a DNS answer is reused."))
    proxies: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc(
            "Proxies to crawl through, as URLs (`http://user:pass@host:port`; `socks5://`, "
            "`socks5h://`, `socks4://` need crawlkit[socks]), or `@file.txt` naming a file with one "
            "a line; their credentials go to the proxy only (docs/identities.md)."
        ),
    )
    proxy_from_env: bool = dataclasses.field(
        default=True,
        metadata=_doc(
            "When `proxies` is empty, use HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY from the "
            "environment, as curl, requests and Scrapy do."
        ),
    )
    sessions: str = dataclasses.field(
        default="auto",
        metadata=_doc(
            "Sessions (a proxy, a cookie jar and a header profile kept together, retired when "
            "blocked): 'on', 'off', or 'auto' (on when `proxies` is set)."
        ),
    )
    session_pool_size: int = dataclasses.field(
        default=0,
        metadata=_doc(
            "Live sessions at once (0: two for each proxy, at least two). A shared (Redis) crawl "
            "has one pool of this size for all its workers (0: also at least one per live worker)."
        ),
    )
    session_max_uses: int = dataclasses.field(
        default=0, metadata=_doc("Requests a session sends before it is retired (0: no limit).")
    )
    session_max_age: float = dataclasses.field(
        default=0.0, metadata=_doc("Seconds a session lives before it is retired (0: no limit).")
    )
    session_max_score: float = dataclasses.field(
        default=1.0,
        metadata=_doc(
            "Error score that retires a session: a block adds 1, an ok answer takes 0.25 off "
            "(1: the first block retires it)."
        ),
    )
    max_session_rotations: int = dataclasses.field(
        default=5,
        metadata=_doc(
            "Times a blocked request is sent again on a fresh session before it fails as "
            "`blocked`; apart from max_retries."
        ),
    )
    identities: str = dataclasses.field(
        default="honest",
        metadata=_doc(
            "Headers a session sends: 'honest' (user_agent and default_headers) or 'browser' "
            "(a real browser's, one per session: needs crawlkit[identities])."
        ),
    )
    fetcher: str = dataclasses.field(
        default="aiohttp",
        metadata=_doc(
            "The HTTP client: 'aiohttp', or 'impersonate' (curl_cffi: a real browser's TLS and "
            "HTTP/2 handshake; needs crawlkit[impersonate]; docs/identities.md)."
        ),
    )
    impersonate: str = dataclasses.field(
        default="chrome",
        metadata=_doc(
            "With fetcher = 'impersonate', the browser whose handshake is sent when the session "
            "has no browser profile: a curl_cffi target ('chrome', 'firefox', 'safari', "
            "'chrome131', ...). With identities = 'browser' each session's profile chooses."
        ),
    )
    block_rules: list[dict[str, Any]] = dataclasses.field(
        default_factory=list,
        metadata=_doc(
            "The site's own block rules, tried before the built-in ones: tables of `label`, "
            "`statuses`, `pattern`, `selector`, `name` (also a spider attribute; docs/identities.md)."
        ),
    )
    on_no_proxy: str = dataclasses.field(
        default="wait",
        metadata=_doc(
            "When every proxy is resting: 'wait' (requests wait for the first back) or 'stop' "
            "(the crawl stops, resumable)."
        ),
    )
    captcha_solver: str = dataclasses.field(
        default="",
        metadata=_doc(
            "A CAPTCHA solver, as an import path (module:Name), asked about each CAPTCHA page "
            "seen (empty: none; docs/identities.md)."
        ),
    )
    pipelines: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc("Item pipelines, as import paths (module:Name), run in this order."),
    )
    middlewares: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc(
            "Downloader middlewares, as import paths (module:Name): process_request runs in this "
            "order before each fetch attempt, process_response and process_exception in reverse."
        ),
    )
    extensions: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc(
            "Extensions, as import paths (module:Name), built once per crawl with "
            "from_crawler(crawler); they subscribe to crawl events through crawler.signals."
        ),
    )
    shutdown_timeout: float = dataclasses.field(
        default=30.0,
        metadata=_doc("Seconds that in-flight work may take to finish after a stop is asked."),
    )
    max_memory_mb: int = dataclasses.field(
        default=0,
        metadata=_doc(
            "Memory ceiling in MiB for the whole crawl (main process and parser workers, resident "
            "memory): a warning at 80%, a graceful, resumable stop at 100% (0: no ceiling)."
        ),
    )
    max_inflight_bytes: int = dataclasses.field(
        default=256 * 1024 * 1024,
        metadata=_doc(
            "Most bytes of response bodies held at once, read or waiting to be parsed; a fetch "
            "waits for room before reading more (0: no limit)."
        ),
    )
    parse_worker_max_tasks: int = dataclasses.field(
        default=10_000,
        metadata=_doc(
            "Responses a parser worker handles before it is replaced by a fresh one, which "
            "frees what a leaky callback kept (0: never)."
        ),
    )
    parse_timeout: float = dataclasses.field(
        default=60.0,
        metadata=_doc(
            "Seconds one callback may run; past that its worker is killed and replaced and the "
            "response fails as parse_timeout (0: no limit)."
        ),
    )
    loop_stall_warning: float = dataclasses.field(
        default=0.25,
        metadata=_doc(
            "Warn when the event loop is blocked this many seconds, naming the pipeline or hook "
            "that was running (0: no warning; pauses of the process are still noticed)."
        ),
    )
    browser_executable: str = dataclasses.field(
        default="",
        metadata=_doc(
            "Chromium to render pages with (a path or a name on PATH); empty: Playwright's own "
            "build if installed, else the system's chromium (needs crawlkit[browser])."
        ),
    )
    browser_concurrency: int = dataclasses.field(
        default=2,
        metadata=_doc("Pages rendered in the browser at once; apart from concurrency's HTTP slots."),
    )
    browser_block_resources: list[str] = dataclasses.field(
        default_factory=lambda: ["image", "font", "media"],
        metadata=_doc(
            "Resource types the browser does not download when it renders (counted instead): "
            "image, font, media, stylesheet, script, xhr, fetch, ... ([]: all are downloaded)."
        ),
    )
    render_timeout: float = dataclasses.field(
        default=30.0,
        metadata=_doc("Seconds one render may take: navigation, actions and waits together."),
    )
    browser_context_pages: int = dataclasses.field(
        default=50,
        metadata=_doc(
            "Pages a browser context (its cookies, cache and memory) serves before a fresh one replaces it."
        ),
    )
    browser_max_memory_mb: int = dataclasses.field(
        default=1024,
        metadata=_doc(
            "Restart the browser, between renders, when its processes hold more than this many "
            "MiB (proportional set size; 0: never)."
        ),
    )
    log_level: str = dataclasses.field(default="INFO", metadata=_doc("DEBUG, INFO, WARNING or ERROR."))
    frontier: str = dataclasses.field(
        default="sqlite",
        metadata=_doc(
            "Where the crawl's queue lives: 'sqlite' (durable, resumable: the default), "
            "'memory' (lost when the process ends) or a redis://HOST:PORT/DB URL (shared by "
            "every process that uses it: see docs/distributed.md)."
        ),
    )
    job_dir: str = dataclasses.field(
        default="",
        metadata=_doc("Folder for a durable crawl's state (default: .crawlkit/jobs/NAME)."),
    )
    http_cache: bool = dataclasses.field(
        default=False,
        metadata=_doc(
            "Keep every response that passed (2xx, or a 3xx the spider handles; never a 4xx, a "
            "5xx or a blocked answer) in the job's cache.sqlite, and answer from it instead of "
            "the network: a development cache (see docs/recrawl.md)."
        ),
    )
    http_cache_offline: bool = dataclasses.field(
        default=False,
        metadata=_doc(
            "Answer only from the HTTP cache, never the network (--offline); a request not "
            "stored fails as not_cached."
        ),
    )
    http_cache_max_age: float = dataclasses.field(
        default=0.0,
        metadata=_doc(
            "Seconds a cached response is served and kept; older ones are fetched again and "
            "evicted when the job opens (0: no limit)."
        ),
    )
    http_cache_max_bytes: int = dataclasses.field(
        default=2 * 1024**3,
        metadata=_doc(
            "Bytes of bodies the HTTP cache holds, as received; past it, the oldest responses "
            "are evicted (0: no limit)."
        ),
    )
    keep_pages: bool = dataclasses.field(
        default=False,
        metadata=_doc(
            "Keep each page's validators (ETag, Last-Modified) and a digest of its body in the "
            "job, without the body, so that a later --recrawl asks only what changed "
            "(http_cache keeps them too)."
        ),
    )
    keep_items: bool = dataclasses.field(
        default=True,
        metadata=_doc(
            "When the job keeps page records (http_cache, keep_pages, a re-crawl), keep each "
            "page's items with them too (as written, compressed), so that --recrawl-output all "
            "writes an unchanged page's items without parsing it (see docs/recrawl.md)."
        ),
    )
    recrawl_output: str = dataclasses.field(
        default="changed",
        metadata=_doc(
            "What a re-crawl writes: 'changed' (the items of new and changed pages) or 'all' "
            "(every page's items: the unchanged ones' from what was stored) (--recrawl-output)."
        ),
    )
    recrawl_match: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc(
            "A re-crawl visits again only the stored pages whose URL matches one of these "
            "patterns (a glob on the whole URL, or re:REGEX searched in it); the others are "
            "treated as unchanged without a request. Empty: every page."
        ),
    )
    recrawl_skip: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc(
            "A re-crawl does not visit again the stored pages whose URL matches one of these "
            "patterns (globs, or re:REGEX): they are treated as unchanged without a request."
        ),
    )
    recrawl_after: float = dataclasses.field(
        default=0.0,
        metadata=_doc(
            "Seconds: a re-crawl treats a page fetched (or found unchanged) more recently than "
            "this as unchanged, without a request (0: every page is asked)."
        ),
    )
    recrawl_sitemap_lastmod: bool = dataclasses.field(
        default=True,
        metadata=_doc(
            "A re-crawl does not fetch again a page a sitemap lists with a <lastmod> no newer "
            "than when the page was fetched (or found unchanged) last."
        ),
    )
    commit_interval: float = dataclasses.field(
        default=1.0,
        metadata=_doc(
            "Seconds between commits of a durable crawl; a hard kill redoes at most this much work."
        ),
    )
    job_name: str = dataclasses.field(
        default="",
        metadata=_doc(
            "Name of a shared (Redis) crawl, its keys crawlkit:{NAME}:* (default: the spider's name)."
        ),
    )
    worker_id: str = dataclasses.field(
        default="",
        metadata=_doc(
            "This process's id in a shared crawl; names its output part, which a restart with "
            "the same id resumes (default: HOST-PID)."
        ),
    )
    lease_ttl: float = dataclasses.field(
        default=30.0,
        metadata=_doc(
            "Seconds a shared crawl's lease lasts unless renewed; the leases of a worker that "
            "died go back to the queue this long after its last renewal."
        ),
    )
    redis_retry_timeout: float = dataclasses.field(
        default=120.0,
        metadata=_doc("Seconds a worker waits for an unreachable Redis in mid-crawl before it stops."),
    )
    redis_seen_shards: int = dataclasses.field(
        default=65536,
        metadata=_doc(
            "Hashes the seen set of a new shared crawl is split into (a power of two). One stays "
            "compact (about 21 bytes a URL) up to Redis's hash-max-listpack-entries URLs (512 by "
            "default), so the default suits up to about 30 million URLs."
        ),
    )
    spiders_dir: str = dataclasses.field(
        default="spiders", metadata=_doc("Folder that `crawlkit crawl` and `list` search.")
    )
    output_format: str = dataclasses.field(
        default="",
        metadata=_doc(
            "Output format: 'jsonl', 'csv' or 'json' (a JSON array); empty: from the output "
            "file's extension, JSONL if it names none."
        ),
    )
    output_gzip: bool = dataclasses.field(
        default=False,
        metadata=_doc("Gzip the output; on by itself when the output file's name ends in .gz."),
    )
    max_items_per_file: int = dataclasses.field(
        default=0,
        metadata=_doc(
            "Split the output into numbered parts of at most this many items "
            "(out-0001.jsonl, out-0002.jsonl, ...); 0: one file."
        ),
    )
    csv_fields: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc("CSV columns, in order; empty: the fields of the first item."),
    )
    feeds: dict[str, dict[str, Any]] = dataclasses.field(
        default_factory=dict,
        metadata=_doc(
            'More outputs, each written with every item, exactly once: {"items.jsonl": {}, '
            '"items.csv": {"fields": ["url", "title"]}, "all.json.gz": {"max_items_per_file": '
            "1000}}. A feed's options: format, gzip, max_items_per_file, fields (CSV columns, or "
            "the fields a JSON feed keeps) and overwrite (true replaces the file, false adds to "
            "it). With -o, that output is one more feed."
        ),
    )
    stats_file: str = dataclasses.field(
        default="",
        metadata=_doc("Write the crawl's figures as JSON to this file at the end (empty: none)."),
    )
    progress: str = dataclasses.field(
        default="auto",
        metadata=_doc(
            "Live progress: 'rich' (a display on the terminal), 'log' (a line every "
            "progress_interval seconds), 'off', or 'auto' (rich when stderr is a terminal, else log)."
        ),
    )
    progress_interval: float = dataclasses.field(
        default=10.0, metadata=_doc("Seconds between two progress lines in 'log' mode.")
    )
    report: str = dataclasses.field(
        default="",
        metadata=_doc(
            "Write the crawl report (one self-contained HTML file) here at the end; a durable "
            "crawl also writes report.html in its job folder. Empty: the job folder's only."
        ),
    )
    series_interval: float = dataclasses.field(
        default=2.0,
        metadata=_doc(
            "Seconds between two points of the crawl's time series (the report's charts), "
            "recorded in the job folder of a durable crawl."
        ),
    )

    def __post_init__(self) -> None:
        validate(self)

    @property
    def effective_parse_workers(self) -> int:
        return (os.cpu_count() or 1) if self.parse_workers == -1 else self.parse_workers

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)
