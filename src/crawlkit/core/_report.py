"""The crawl report: one self-contained HTML file (inline CSS and SVG, no script), readable offline.

Made from a ``SeriesData`` (``_series.py``): at the end of a crawl from what it recorded, or
later from a job folder (``crawlkit report JOB``). The dashboard of ``crawlkit serve`` shows the
same charts (``charts_html``) and refreshes them while the crawl runs.
"""

from __future__ import annotations

import os
import time
from html import escape
from pathlib import Path
from typing import Any

import orjson

from ._charts import CHARTS, bar_rows, line_chart
from ._series import SeriesData

__all__ = ["REPORT_STYLE", "charts_html", "render_report", "write_report"]

# Statuses that say the site pushed back: refused (403), rate-limited (429), overloaded (503).
_BLOCK_STATUSES = ("403", "429", "503")
_HOSTS_SHOWN = 10

REPORT_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1120px;padding:16px 20px;color:#1f2937}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #e5e7eb}
.sub{color:#6b7280;margin:0 0 12px}
.figures{display:flex;flex-wrap:wrap;gap:8px}.figures div{background:#f3f4f6;border-radius:6px;
padding:6px 12px}.figures b{display:block;font-size:18px}
.charts{display:flex;flex-wrap:wrap;gap:10px}
figure.chart{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:6px;flex:1 1 400px;max-width:540px}
figure.chart svg{width:100%;height:auto;display:block}
figcaption{font-weight:600;font-size:13px}figcaption b{float:right;font-weight:600}
svg text.axis{font-size:10px;fill:#6b7280}
table{border-collapse:collapse}th,td{text-align:left;padding:2px 10px 2px 0;vertical-align:top}
table.bars th{font-weight:normal;white-space:nowrap;max-width:420px;overflow:hidden;text-overflow:ellipsis}
table.bars td{white-space:nowrap}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:10px 30px}
.none{color:#6b7280}code,.url{font:12px ui-monospace,monospace;overflow-wrap:anywhere}
details pre{font-size:12px;background:#f9fafb;padding:8px;overflow:auto}
"""


def charts_html(data: SeriesData) -> str:
    """The time-series charts, as a fragment of HTML."""
    charts = "".join(line_chart(data.points, key, title, colour) for key, title, colour in CHARTS)
    return f'<div class="charts">{charts}</div>'


def _figures(stats: dict[str, Any]) -> dict[str, Any]:
    """The whole job's figures when the job had earlier runs, else this run's."""
    job = stats.get("job")
    return {**stats, **job} if isinstance(job, dict) else stats


def _counts(counter: Any) -> list[tuple[str, float, str]]:
    if not isinstance(counter, dict):
        return []
    pairs = [(str(k), v) for k, v in counter.items() if isinstance(v, int | float)]
    return [(k, float(v), f"{v:,}") for k, v in sorted(pairs, key=lambda kv: -kv[1])]


def _busiest(points: list[dict[str, Any]]) -> list[tuple[str, float, str]]:
    """Responses per host, estimated from each sample's busiest hosts and their rates."""
    total: dict[str, float] = {}
    previous: dict[int, float] = {}
    for point in points:
        run, t = point.get("run", 0), point.get("t")
        if not isinstance(t, int | float):
            continue
        span = t - previous.get(run, t - 0.0)
        previous[run] = t
        hosts = point.get("hosts")
        if isinstance(hosts, dict) and span > 0:
            for host, rate in hosts.items():
                if isinstance(rate, int | float):
                    total[host] = total.get(host, 0.0) + rate * span
    busiest = sorted(total.items(), key=lambda kv: -kv[1])[:_HOSTS_SHOWN]
    return [(h, n, f"~{n:,.0f} responses") for h, n in busiest]


def _seconds(value: Any) -> str:
    seconds = int(value) if isinstance(value, int | float) else 0
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _failures(stats: dict[str, Any]) -> str:
    failures = stats.get("failures")
    if not isinstance(failures, dict) or not failures:
        return '<p class="none">none</p>'
    examples = stats.get("failure_examples")
    examples = examples if isinstance(examples, dict) else {}
    rows = ["<table><tr><th>reason</th><th>count</th><th>for example</th></tr>"]
    for reason, count in sorted(failures.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int) else 0):
        urls = examples.get(reason) or []
        shown = "<br>".join(f'<span class="url">{escape(str(u))}</span>' for u in urls[:3])
        rows.append(f"<tr><td>{escape(str(reason))}</td><td>{count}</td><td>{shown or '-'}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def render_report(data: SeriesData) -> str:
    """The whole report, as one HTML document."""
    stats = data.stats
    figures = _figures(stats)
    runs = data.runs
    settings = runs[-1].get("settings", {}) if runs else {}
    spider = str(runs[-1].get("spider") or data.name) if runs else data.name
    started = runs[0].get("started") if runs else None
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "unknown"
    raw_statuses = figures.get("statuses")
    statuses: dict[str, Any] = raw_statuses if isinstance(raw_statuses, dict) else {}
    blocks = {s: statuses[s] for s in _BLOCK_STATUSES if s in statuses}
    head_figures = [
        ("pages", f"{figures.get('pages', 0):,}"),
        ("items", f"{figures.get('items', 0):,}"),
        ("failed pages", f"{figures.get('pages_failed', 0):,}"),
        ("retries", f"{figures.get('retries', 0):,}"),
        ("elapsed", _seconds(figures.get("elapsed_s"))),
        ("runs", str(len(runs) or 1)),
        ("stopped because", escape(str(stats.get("stop_reason", "-")))),
    ]
    state = "running" if stats.get("running") else "ended"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>crawl report: {escape(data.name)}</title><style>{REPORT_STYLE}</style></head><body>",
        f"<h1>Crawl report: {escape(data.name)}</h1>",
        f'<p class="sub">spider {escape(spider)}; started {escape(when)}; {state}; '
        f"output {escape(str(stats.get('output', '-')))}</p>",
        '<div class="figures">',
        *(f"<div>{label}<b>{value}</b></div>" for label, value in head_figures),
        "</div><h2>Over time</h2>",
        charts_html(data),
        '<div class="cols"><div><h2>Status codes</h2>',
        bar_rows(_counts(statuses)),
        "</div><div><h2>Retries and blocks</h2>",
        bar_rows(_counts(figures.get("retry_reasons")), "#db2777"),
        "<p>pushed back (403, 429, 503): "
        + (", ".join(f"{k}: {v:,}" for k, v in blocks.items()) or "none")
        + "</p>",
        "<p>throttled hosts (highest delay, s): "
        + escape(", ".join(f"{h} {d}" for h, d in (stats.get("throttled_hosts") or {}).items()) or "none")
        + "</p>",
        "</div><div><h2>Busiest hosts</h2>",
        bar_rows(_busiest(data.points), "#059669"),
        "</div><div><h2>Slowest hosts</h2>",
        bar_rows(
            [(h, float(s), f"{s:.3f} s") for h, s in (stats.get("slow_hosts") or {}).items()],
            "#d97706",
        ),
        "</div></div><h2>Failures by reason</h2>",
        _failures(figures if "failures" in figures else stats),
        "<h2>Links not followed, responses not parsed</h2>",
        bar_rows(_counts(figures.get("filtered")) + _counts(figures.get("not_parsed")), "#6b7280"),
        "<h2>Settings in force</h2><details><summary>the last run's settings</summary><pre>",
        escape(orjson.dumps(settings, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()),
        "</pre></details></body></html>",
    ]
    return "\n".join(parts)


def write_report(data: SeriesData, path: Path) -> None:
    """Write the report to ``path`` atomically: a browser reloading it never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(render_report(data), encoding="utf-8")
    os.replace(partial, path)
