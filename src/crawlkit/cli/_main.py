"""The ``crawlkit`` command.

Exit codes: 0 the crawl finished and nothing failed; 1 it finished but pages or items failed;
2 usage or configuration error; 3 stopped early, gracefully, by a signal or the memory ceiling
(run again to resume); 4 stopped by force (a second signal or the shutdown timeout); 5 the output
or the job's database could not be written (disk full, file too large, I/O error).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..core import STOP_SIGNALS, CrawlStats
from ..errors import ConfigError, CrawlkitError, SpiderError, StorageError
from ..exporters import Mode
from ..guards import excepthook, protect_handlers, redact_text
from ..settings import Settings, load_settings
from ..spider import Spider, discover_spiders, load_spider_file
from ._cache import CACHE_COMMANDS, add_cache_command, run_cache_command
from ._report import add_report_command, run_report
from ._serve import add_serve_command, run_serve
from ._shared import SHARED_COMMANDS, add_shared_commands, run_shared_command, run_workers
from ._tools import TOOL_COMMANDS, add_tool_commands, run_tool_command

__all__ = ["main"]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_STOPPED, EXIT_FORCED, EXIT_OUTPUT = 0, 1, 2, 3, 4, 5

log = logging.getLogger("crawlkit.cli")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 on usage errors, as we want
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"crawlkit: error: {message}\n")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def add_settings_option(p: argparse.ArgumentParser) -> None:
    """``-s KEY=VALUE``, shared by every command that reads settings."""
    p.add_argument(
        "-s",
        "--set",
        dest="settings",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="override a setting (repeatable)",
    )


def add_spider_args_option(p: argparse.ArgumentParser) -> None:
    """``-a NAME=VALUE``, shared by every command that makes a spider."""
    p.add_argument(
        "-a",
        "--arg",
        dest="spider_args",
        action="append",
        type=_key_value,
        default=[],
        metavar="NAME=VALUE",
        help="spider argument, set as an attribute (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crawlkit", description="A fast, durable, polite web-crawling framework.")
    parser.add_argument("--version", action="version", version=f"crawlkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def crawl_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-o",
            "--output",
            type=Path,
            help="output file; its extension picks the format: .jsonl, .csv, .json, each with an "
            "optional .gz; - for stdout (default: NAME.jsonl)",
        )
        mode = p.add_mutually_exclusive_group()
        mode.add_argument(
            "-O",
            dest="output_replaced",
            type=Path,
            metavar="OUTPUT",
            help="output file, replacing an existing one (Scrapy's -O): -o OUTPUT --overwrite",
        )
        mode.add_argument("--overwrite", action="store_true", help="replace an existing output file")
        mode.add_argument("--append", action="store_true", help="append to an existing output file")
        add_settings_option(p)
        add_spider_args_option(p)
        p.add_argument("--concurrency", type=int, help="requests in flight at once")
        p.add_argument(
            "--frontier",
            metavar="sqlite|memory|redis://HOST:PORT/DB",
            help="sqlite: durable and resumable (default); memory: for throwaway runs; "
            "a Redis URL: one crawl shared by every process that uses it",
        )
        p.add_argument(
            "--workers", type=int, metavar="N", help="start N worker processes on one Redis frontier"
        )
        p.add_argument("--job-dir", type=Path, help="where a durable crawl keeps its state")
        p.add_argument(
            "--fresh",
            action="store_true",
            help="discard the job's saved state and start over (its HTTP cache stays)",
        )
        p.add_argument(
            "--cache",
            action="store_true",
            default=None,
            help="keep responses in the job's HTTP cache and answer from it (setting http_cache)",
        )
        p.add_argument(
            "--offline",
            action="store_true",
            default=None,
            help="answer only from the job's HTTP cache, never the network; a miss fails as not_cached",
        )
        p.add_argument(
            "--recrawl",
            action="store_true",
            help="visit again what the job's finished crawl fetched, asking only for what changed; "
            "the output gets the items of new and changed pages (docs/recrawl.md)",
        )
        p.add_argument(
            "--recrawl-output",
            choices=["changed", "all"],
            help="what a re-crawl writes: the items of new and changed pages (default), or all "
            "(the unchanged pages' from what was stored) (setting recrawl_output)",
        )
        p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper)
        p.add_argument(
            "--format",
            dest="output_format",
            choices=["jsonl", "csv", "json"],
            help="output format (default: from the output's extension, else jsonl)",
        )
        p.add_argument("--gzip", action="store_true", default=None, help="gzip the output (also: a .gz name)")
        p.add_argument(
            "--max-items-per-file", type=int, metavar="N", help="split the output into parts of N items"
        )
        p.add_argument("--stats-file", type=Path, metavar="PATH", help="write the crawl's figures as JSON")
        p.add_argument("--progress", choices=["auto", "rich", "log", "off"], help="live progress display")
        p.add_argument(
            "--report",
            type=Path,
            metavar="PATH",
            help="write the crawl report (one HTML file) here at the end; a durable crawl also "
            "writes one in its job folder",
        )

    crawl = sub.add_parser("crawl", help="run a spider from the spiders folder by name")
    crawl.add_argument("name", help="the spider's name (see 'crawlkit list')")
    crawl_options(crawl)
    runspider = sub.add_parser("runspider", help="run the spider defined in a Python file")
    runspider.add_argument("path", type=Path, help="a .py file that defines one Spider subclass")
    crawl_options(runspider)
    sub.add_parser("list", help="list the spiders in the spiders folder")
    add_tool_commands(sub, add_settings_option, add_spider_args_option)
    add_shared_commands(sub)
    add_cache_command(sub)
    add_report_command(sub)
    add_serve_command(sub)
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    protect_handlers()  # no credential from a URL or a header reaches the log


def _project_settings(
    overrides: dict[str, Any] | None = None, spider: type[Spider] | None = None
) -> Settings:
    return load_settings(
        pyproject=Path("pyproject.toml"),
        spider_settings=spider.custom_settings if spider is not None else None,
        overrides=overrides,
    )


def _cmd_list() -> int:
    folder = Path(_project_settings().spiders_dir)
    found = discover_spiders(folder)
    for path, error in found.broken.items():
        print(f"crawlkit: cannot import {path}:\n{error}", file=sys.stderr)
    if not found.spiders:
        print(f"no spiders in {folder.resolve()}", file=sys.stderr)
        return EXIT_USAGE if found.broken else EXIT_OK
    width = max(len(n) for n in found.spiders)
    for name, cls in sorted(found.spiders.items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name.ljust(width)}  {cls.__module__}.{cls.__qualname__}" + (f"  {doc[0]}" if doc else ""))
    return EXIT_OK


def _find_spider(name: str) -> type[Spider]:
    folder = Path(_project_settings().spiders_dir)
    found = discover_spiders(folder)
    if name in found.spiders:
        return found.spiders[name]
    known = ", ".join(sorted(found.spiders)) or f"none (looked in {folder.resolve()})"
    broken = "".join(f"\n(could not import {path}:\n{err})" for path, err in found.broken.items())
    raise SpiderError(f"no spider named {name!r}; spiders: {known}{broken}")


def _output_mode(args: argparse.Namespace) -> Mode | None:
    if args.append:
        return "append"
    if args.overwrite:
        return "overwrite"
    return None


def _run(spider_cls: type[Spider], args: argparse.Namespace) -> int:
    from ..core import prepared_engine, run_engine, spider_name  # heavy imports: crawls only

    if args.output_replaced is not None:
        if args.output is not None:
            raise ConfigError("give the output once: -o OUTPUT, or -O OUTPUT to replace it")
        args.output, args.overwrite = args.output_replaced, True
    if args.output == Path("-"):
        # Items on stdout, as Unix tools do; logs and the summary stay on stderr.
        args.output = Path("/dev/stdout")
    if args.recrawl_output is not None and not args.recrawl:
        # Without --recrawl the flag would do nothing; saying so beats a silent full output.
        raise ConfigError("--recrawl-output applies to a re-crawl: give --recrawl too")
    overrides: dict[str, Any] = dict(args.settings)
    for option, key in (
        ("concurrency", "concurrency"),
        ("log_level", "log_level"),
        ("frontier", "frontier"),
        ("job_dir", "job_dir"),
        ("output_format", "output_format"),
        ("gzip", "output_gzip"),
        ("max_items_per_file", "max_items_per_file"),
        ("stats_file", "stats_file"),
        ("progress", "progress"),
        ("cache", "http_cache"),
        ("offline", "http_cache_offline"),
        ("recrawl_output", "recrawl_output"),
        ("report", "report"),
    ):
        value = getattr(args, option)
        if value is not None:
            overrides[key] = str(value) if isinstance(value, Path) else value
    settings = _project_settings(overrides, spider_cls)
    _setup_logging(settings.log_level.upper())
    if args.workers is not None:
        job = settings.job_name or spider_name(spider_cls)
        return run_workers(args.argv, args.workers, settings, job, fresh=args.fresh)
    output: Path | None = args.output or Path(
        f"{spider_name(spider_cls)}.{settings.output_format or 'jsonl'}"
    )
    if args.output is None and settings.feeds:
        output = None  # the feeds are the outputs; -o would be one more
    elif args.output is None and "://" in settings.frontier:
        output = Path(f"{spider_name(spider_cls)}-parts")  # a shared crawl writes a folder of parts
    with prepared_engine(
        spider_cls,
        settings,
        output,
        mode=_output_mode(args),
        fresh=args.fresh,
        spider_kwargs=dict(args.spider_args),
        recrawl=args.recrawl,
    ) as engine:
        # While the engine runs, its own handlers take Ctrl-C, SIGTERM and SIGHUP. Before and after, a
        # signal in the last moments (a second Ctrl-C just as a graceful stop ends) must not
        # turn a clean exit into a KeyboardInterrupt traceback: the engine restores these.
        # SIGHUP is left alone: the engine handles it only where nohup has not ignored it.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        try:
            stats = run_engine(engine)
        except StorageError as exc:
            if engine.stats.stop_reason == "finished":  # it failed before the crawl began
                engine.stats.stop_reason = "output error"
            print(engine.stats.summary(), file=sys.stderr)
            print(
                f"crawlkit: {redact_text(str(exc))}\n(what was committed is kept; once the cause is "
                "fixed, run the same command again to resume)",
                file=sys.stderr,
            )
            return EXIT_OUTPUT
    print(stats.summary(), file=sys.stderr)
    code = _exit_code(stats, forced=engine.forced)
    if hint := _next_step(stats, code, durable=engine.frontier.durable):
        print(f"crawlkit: {hint}", file=sys.stderr)
    return code


def _next_step(stats: CrawlStats, code: int, *, durable: bool) -> str:
    """What to do next, after the summary: the two endings that puzzle a newcomer."""
    if not durable:
        return ""
    if stats.stop_reason == "already finished":
        # Printed whatever the log level: a re-run after fixing the spider does nothing otherwise.
        return "this crawl had already finished, so nothing was fetched; add --fresh to start it over"
    if code in (EXIT_STOPPED, EXIT_FORCED):
        return "stopped early; run the same command again, without --fresh, to resume"
    return ""


def _exit_code(stats: CrawlStats, *, forced: bool) -> int:
    if forced:
        return EXIT_FORCED
    stopped_by_signal = stats.stop_reason in {sig.name for sig in STOP_SIGNALS}
    # Every proxy resting with on_no_proxy = "stop" (fetch.NO_PROXY_STOP) stops as a signal does.
    if stopped_by_signal or stats.stop_reason.startswith(("memory limit", "no proxy available")):
        return EXIT_STOPPED
    if stats.earlier is not None and stats.stop_reason != "already finished":
        # A resumed job: a failure in an earlier run is still the crawl's failure.
        return EXIT_OK if stats.job_totals().ok else EXIT_FAILURES
    return EXIT_OK if stats.ok else EXIT_FAILURES


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``crawlkit`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for crawl --workers
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = excepthook  # a crash's traceback is redacted too
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "crawl":
            return _run(_find_spider(args.name), args)
        if args.command == "runspider":
            return _run(load_spider_file(args.path), args)
        if args.command in TOOL_COMMANDS:
            return run_tool_command(args, _project_settings, _find_spider)
        if args.command in CACHE_COMMANDS:
            return run_cache_command(args)
        if args.command in SHARED_COMMANDS:
            return run_shared_command(args, _project_settings)
        if args.command == "report":
            return run_report(args)
        if args.command == "serve":
            return run_serve(args, _project_settings)
    except (ConfigError, SpiderError) as exc:
        print(f"crawlkit: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except CrawlkitError as exc:
        print(f"crawlkit: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_FAILURES
    except BrokenPipeError:
        # The reader went away (`crawlkit parse URL | head`): stop quietly, as Unix tools do,
        # and keep Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURES
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse allows no other


if __name__ == "__main__":
    sys.exit(main())
