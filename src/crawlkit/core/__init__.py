"""The engine and what runs a crawl around it.

The engine's worker tasks carry each request from the frontier through ``fetch`` and the parser
pool to the commit; around it: setting a crawl up (``crawl()``, ``prepared_engine``), job
directories, the pre-flight checks, close conditions, progress, stats, and shared (Redis) crawls.

Only ``CrawlStats`` is imported eagerly: parser workers import ``crawlkit`` for the spider API
and should not pay for the engine, the frontiers and the exporters.
"""

from typing import TYPE_CHECKING, Any

from ._closing import STOP_SIGNALS, stop_signals
from ._stats import CrawlStats

if TYPE_CHECKING:
    from ._jobs import JobDir
    from ._report import REPORT_STYLE, charts_html, render_report, write_report
    from ._runner import crawl, prepared_engine, run_engine, spider_name
    from ._series import SeriesData, load_series
    from ._shared import export_job, job_status, reset_job

__all__ = [
    "REPORT_STYLE",
    "STOP_SIGNALS",
    "CrawlStats",
    "JobDir",
    "SeriesData",
    "charts_html",
    "crawl",
    "export_job",
    "job_status",
    "load_series",
    "prepared_engine",
    "render_report",
    "reset_job",
    "run_engine",
    "spider_name",
    "stop_signals",
    "write_report",
]

_LAZY = {
    "JobDir": "_jobs",
    "crawl": "_runner",
    "prepared_engine": "_runner",
    "run_engine": "_runner",
    "spider_name": "_runner",
    "export_job": "_shared",
    "job_status": "_shared",
    "reset_job": "_shared",
    "SeriesData": "_series",
    "load_series": "_series",
    "charts_html": "_report",
    "REPORT_STYLE": "_report",
    "render_report": "_report",
    "write_report": "_report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
