"""What each crawl process imports before its first page: what start-up costs.

A crawl's first request waits for the main process's imports, and its first parse for a worker's.
Each parser worker imports the spider API only; the main process imports aiohttp (about a third
of its imports) in a thread while the workers start and the frontier opens (``load_client``), so
the engine's own modules must not import it first. Each import is checked in a fresh interpreter:
this test process has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SPIDER = Path(__file__).resolve().parents[2] / "bench" / "contenders" / "crawlkit_spider.py"


def modules_after(code: str) -> set[str]:
    """The top-level packages and modules imported once ``code`` has run in a new interpreter."""
    script = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_a_parser_worker_starts_without_the_event_loop_the_client_or_the_settings() -> None:
    loaded = modules_after(
        f"""
        import importlib.util
        import crawlkit.parsing._worker  # what `python -m crawlkit.parsing` runs
        spec = importlib.util.spec_from_file_location("shop", {str(SPIDER)!r})
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        """
    )
    assert "crawlkit.spider" in loaded and "selectolax.lexbor" in loaded  # the spider did load
    for heavy in ("asyncio", "aiohttp", "sqlite3", "tomllib", "crawlkit.core", "crawlkit.settings"):
        assert heavy not in loaded, f"a parser worker imports {heavy} before its first page"


def test_the_engine_leaves_aiohttp_to_its_start_up_thread() -> None:
    loaded = modules_after("import crawlkit.cli._main, crawlkit.core._runner, crawlkit.fetch")
    assert "crawlkit.core._engine" in loaded and "crawlkit.fetch._downloader" in loaded
    assert "aiohttp" not in loaded
    # ... which the start-up thread then loads: what the engine runs while the workers start.
    assert "aiohttp" in modules_after("import crawlkit.fetch\ncrawlkit.fetch.load_client()")


def test_names_imported_on_first_use_are_still_there() -> None:
    loaded = modules_after(
        """
        import crawlkit, crawlkit.guards, crawlkit.parsing
        from crawlkit import *  # noqa: F403
        assert crawlkit.Settings.__name__ == "Settings"
        assert crawlkit.CrawlStats.__name__ == "CrawlStats"
        assert callable(crawlkit.guards.crawl_guards) and callable(crawlkit.guards.rss_bytes)
        assert callable(crawlkit.guards.running)
        assert crawlkit.parsing.ParserPool.__name__ == "ParserPool"
        assert callable(crawlkit.parsing.make_parser)
        for module, name in ((crawlkit, "Nope"), (crawlkit.guards, "nope"), (crawlkit.parsing, "nope")):
            try:
                getattr(module, name)
            except AttributeError as exc:
                assert name in str(exc)
            else:
                raise AssertionError(f"{module.__name__}.{name} exists")
        """
    )
    assert "crawlkit.parsing._pool" in loaded
