"""The commands around a crawl: ``new``, ``fetch``, ``parse`` and ``shell``.

They exist to shorten the loop of writing a spider: scaffold one, look at a page as crawlkit sees it
(the same fetcher, decompression and charset detection as a crawl), run one callback on one page,
or try selectors interactively.
"""

from __future__ import annotations

import argparse
import code
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..errors import FetchError, NotTextError
from ..guards import MASK, is_secret_header
from ..http import Request, Response
from ..settings import Settings
from ..spider import Spider

__all__ = ["TOOL_COMMANDS", "add_tool_commands", "run_tool_command"]

TOOL_COMMANDS = ("new", "fetch", "parse", "shell")

SettingsFor = Callable[[dict[str, Any], "type[Spider] | None"], Settings]


def add_tool_commands(
    sub: Any,
    settings_option: Callable[[argparse.ArgumentParser], None],
    spider_args_option: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the subcommands to the ``crawlkit`` parser's subparsers, with its shared options."""
    new = sub.add_parser("new", help="write a new spider into the spiders folder, ready to run")
    new.add_argument("name", help="the spider's name, also its module's: spiders/NAME.py")
    new.add_argument("url", help="the start URL; its host becomes allowed_domains")

    fetch = sub.add_parser(
        "fetch",
        help="fetch a page and print its decoded text as crawlkit sees it (the status and headers on stderr)",
    )
    fetch.add_argument("url")
    fetch.add_argument("--headers", action="store_true", help="print the status and headers only, on stdout")
    _render_options(fetch)
    settings_option(fetch)

    parse = sub.add_parser("parse", help="run one spider callback on one page; print what it yields")
    parse.add_argument("url")
    parse.add_argument("--spider", required=True, metavar="NAME", help="the spider (see 'crawlkit list')")
    parse.add_argument("-c", "--callback", default="parse", help="the callback to run (default: parse)")
    parse.add_argument("--meta", type=_json_object, default=None, metavar="JSON", help="the request's meta")
    parse.add_argument(
        "--cb-kwargs",
        type=_json_object,
        default=None,
        metavar="JSON",
        help="keyword arguments of the callback",
    )
    spider_args_option(parse)
    settings_option(parse)

    shell = sub.add_parser("shell", help="an interactive Python session with the page as `response`")
    shell.add_argument("url")
    _render_options(shell)
    settings_option(shell)


def _render_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--render",
        action="store_true",
        help="render the page in headless Chromium and show the DOM the browser built (crawlkit[browser])",
    )
    parser.add_argument(
        "--wait-for",
        metavar="SEL",
        default=None,
        help="with --render: wait for this CSS selector (or load state: load, domcontentloaded, networkidle)",
    )


def _page_request(url: str, args: argparse.Namespace) -> Request | None:
    """The request for a tool's page: None (a plain fetch) unless it is to be rendered."""
    if not (args.render or args.wait_for):
        return None
    return Request(url, meta={"allow_binary": True}, render=True, wait_for=args.wait_for)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def run_tool_command(
    args: argparse.Namespace,
    settings_for: SettingsFor,
    find_spider: Callable[[str], type[Spider]],
) -> int:
    """Run one of ``TOOL_COMMANDS``; returns the exit code."""
    if args.command == "new":
        return _new(args, settings_for({}, None))
    settings = settings_for(dict(args.settings), None)
    if args.command == "fetch":
        return _fetch(args, settings)
    if args.command == "shell":
        return _shell(args.url, settings, args)
    spider_cls = find_spider(args.spider)
    return _parse(args, spider_cls, settings_for(dict(args.settings), spider_cls))


def _new(args: argparse.Namespace, settings: Settings) -> int:
    from ._scaffold import new_spider

    path = new_spider(args.name, args.url, Path(settings.spiders_dir))
    print(f"wrote {path}; run it with: crawlkit crawl {args.name} -o {args.name}.jsonl", file=sys.stderr)
    return 0


def _get(url: str, settings: Settings, request: Request | None = None) -> Response:
    from ..testing import fetch_response

    try:
        return fetch_response(url, settings=settings, request=request)
    except FetchError as exc:
        raise FetchError(f"cannot fetch {url}: {exc}", url) from None
    except ValueError as exc:  # an unusable body: a bad Content-Encoding, a gzip bomb
        raise FetchError(f"cannot decode {url}: {exc}", url) from None


def _status_and_headers(response: Response) -> str:
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP {response.status} {phrase}".rstrip() + f"  {response.url}"]
    # A Set-Cookie (or a token a server echoes) is a credential: shown as anywhere else, masked.
    lines += [f"{key}: {MASK if is_secret_header(key) else value}" for key, value in response.headers.items()]
    return "\n".join(lines)


def _fetch(args: argparse.Namespace, settings: Settings) -> int:
    response = _get(args.url, settings, _page_request(args.url, args))
    if args.headers:
        sys.stdout.write(_status_and_headers(response) + "\n")
        return 0
    # The body alone on stdout, so that `crawlkit fetch URL > page.html` keeps a page as it is;
    # the status and headers go to stderr, where the terminal still shows them.
    print(_status_and_headers(response), file=sys.stderr)
    try:
        text = response.text
    except NotTextError:
        content_type = response.headers.get("Content-Type", "")
        print(f"crawlkit: {len(response.body)} bytes of {content_type}: not text", file=sys.stderr)
        return 0
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    rendered = ""
    if response.request.render:
        blocked = response.meta.get("render_blocked", 0)
        rendered = f" (the DOM after rendering; {blocked} requests of the page blocked)"
    print(f"crawlkit: {len(response.body)} bytes, decoded as {response.encoding}{rendered}", file=sys.stderr)
    return 0


def _request_dict(request: Request) -> dict[str, Any]:
    return {
        "url": request.url,
        "callback": request.callback or "parse",
        "method": request.method,
        "meta": request.meta,
        "cb_kwargs": request.cb_kwargs,
        "priority": request.priority,
        "dont_filter": request.dont_filter,
    }


def _parse(args: argparse.Namespace, spider_cls: type[Spider], settings: Settings) -> int:
    from ..parsing import item_to_json, run_callback_as_worker

    request = Request(args.url, args.callback, meta=args.meta, cb_kwargs=args.cb_kwargs)
    response = _get(args.url, settings, request)
    report: dict[str, Any] = {"url": response.url, "status": response.status, "callback": args.callback}
    handled = 200 <= response.status < 300 or response.status in spider_cls.handle_httpstatus_list
    if not handled:
        report["error"] = (
            f"HTTP {response.status}: a crawl would count this page as failed and not pass it to "
            "a callback (unless the spider lists the status in handle_httpstatus_list)"
        )
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 1
    spider = spider_cls(**dict(args.spider_args))
    outcome = run_callback_as_worker(spider, response, request)
    items = []
    for item in outcome.items:
        try:
            items.append(orjson.loads(item_to_json(item)))
        except TypeError as exc:
            items.append({"<not JSON>": f"{exc}: {item!r:.200}"})
    report["items"] = items
    report["requests"] = [_request_dict(r) for r in outcome.requests]
    report["filtered"] = outcome.filtered or {}
    report["invalid_items"] = outcome.invalid or []
    error = outcome.error
    report["error"] = None if error is None else str(error)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2, default=repr).decode())
    if error is not None and error.worker_traceback:
        print(error.worker_traceback.rstrip(), file=sys.stderr)
    return 1 if error is not None else 0


_BANNER = """\
crawlkit shell: {status} {url}
  response              the page (response.css(...), response.css_first(...), response.text)
  request               the request that fetched it
  fetch(url)            fetch another page into `response` (rendered if this one was)
  settings, Request     the settings in force, and the Request class
Try: response.css_first("title").text()"""


def shell_namespace(response: Response, settings: Settings) -> dict[str, Any]:
    """The names the shell starts with; ``fetch(url)`` replaces ``response`` and ``request``
    (rendered as the first page was, with its ``wait_for``)."""
    namespace: dict[str, Any] = {}
    first = response.request

    def fetch(url: str) -> Response:
        again = first.replace(url=url, meta={"allow_binary": True}) if first.render else None
        page = _get(url, settings, again)
        namespace.update(response=page, request=page.request)
        return page

    namespace.update(
        response=response, request=response.request, fetch=fetch, settings=settings, Request=Request
    )
    return namespace


def _shell(url: str, settings: Settings, args: argparse.Namespace) -> int:
    response = _get(url, settings, _page_request(url, args))
    namespace = shell_namespace(response, settings)
    banner = _BANNER.format(status=response.status, url=response.url)
    if sys.stdin.isatty() and _start_ipython(namespace, banner):
        return 0
    code.interact(banner=banner, local=namespace, exitmsg="")
    return 0


def _start_ipython(namespace: dict[str, Any], banner: str) -> bool:
    try:
        embed = importlib.import_module("IPython.terminal.embed")
    except ImportError:
        return False
    embed.InteractiveShellEmbed(banner1=banner + "\n", user_ns=namespace)()
    return True
