"""The dashboard: one page and its script, served by ``crawlkit serve``, nothing from elsewhere.

The charts are the report's, drawn on the server as SVG (``core._charts``) and fetched again on
each update of the job's event stream; the script only fetches, swaps and lists. It is served as a
file of its own so that the page's Content-Security-Policy can forbid inline script.
"""

from __future__ import annotations

from ..core import REPORT_STYLE

__all__ = ["DASHBOARD_HTML", "DASHBOARD_JS"]

DASHBOARD_HTML = (
    """<!doctype html><html lang=en><head><meta charset=utf-8>
<title>crawlkit</title><link rel="icon" href="data:,"><style>"""
    + REPORT_STYLE
    + """
.layout{display:grid;grid-template-columns:300px 1fr;gap:24px}
figure.chart{flex:1 1 300px;max-width:400px}
form label{display:block;margin:6px 0 2px;font-weight:600;font-size:13px}
select,input,textarea{width:100%;box-sizing:border-box;font:13px ui-monospace,monospace}
button{margin:8px 6px 0 0;padding:4px 12px}
#jobs tr{cursor:pointer}#jobs tr.selected{background:#eef2ff}
pre{font-size:12px;background:#f9fafb;padding:8px;max-height:260px;overflow:auto;white-space:pre-wrap}
.status{font-weight:600}.err{color:#b91c1c}
</style></head><body>
<h1>crawlkit</h1><p class="sub" id="project"></p>
<div class="layout"><div>
<h2>Start a crawl</h2>
<form id="start-form">
<label for="spider-select">spider</label><select id="spider-select"></select>
<label for="job-name">job name (default: the spider's)</label><input id="job-name">
<label for="job-args">arguments, NAME=VALUE a line</label><textarea id="job-args" rows="3"></textarea>
<label for="job-settings">settings, NAME=VALUE a line</label><textarea id="job-settings" rows="3"></textarea>
<button type="submit" id="start">Start</button></form>
<p id="form-error" class="err"></p>
<h2>Jobs</h2><table id="jobs"><thead><tr><th>job</th><th>status</th><th>pages</th><th>items</th></tr></thead>
<tbody></tbody></table>
</div><div id="job" hidden>
<h2><span id="job-title"></span> <span class="status" id="job-status"></span></h2>
<div class="figures">
<div>pages<b id="page-count">0</b></div><div>items<b id="item-count">0</b></div>
<div>failed<b id="failed-count">0</b></div><div>retries<b id="retry-count">0</b></div></div>
<p><button id="stop">Stop</button><button id="resume">Resume</button>
<a id="report-link" target="_blank">report</a> · <a id="output-link">download the output</a>
<code id="output"></code></p>
<div id="charts"></div>
<div class="cols"><div><h2>Last items</h2><pre id="items"></pre></div>
<div><h2>Last errors</h2><pre id="errors" class="err"></pre></div></div>
<h2>Log</h2><pre id="log"></pre>
</div></div>
<script src="/dashboard.js"></script></body></html>
"""
)

DASHBOARD_JS = r"""
"use strict";
const $ = (id) => document.getElementById(id);
let current = null, stream = null;

async function api(path, options) {
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function pairs(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

async function loadSpiders() {
  const data = await api("/api/spiders");
  const select = $("spider-select");
  const label = (s) => s.name + (s.doc ? " - " + s.doc : "");
  select.replaceChildren(...data.spiders.map((s) => new Option(label(s), s.name)));
}

async function loadJobs() {
  const data = await api("/api/jobs");
  const rows = data.jobs.map((job) => {
    const tr = document.createElement("tr");
    tr.dataset.job = job.name;
    if (job.name === current) tr.className = "selected";
    for (const value of [job.name, job.status, job.figures.pages ?? 0, job.figures.items ?? 0]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    tr.addEventListener("click", () => show(job.name));
    return tr;
  });
  document.querySelector("#jobs tbody").replaceChildren(...rows);
}

function render(job) {
  $("job-title").textContent = job.name;
  $("job-status").textContent = job.status;
  $("job-status").dataset.status = job.status;
  $("page-count").textContent = job.figures.pages ?? 0;
  $("item-count").textContent = job.figures.items ?? 0;
  $("failed-count").textContent = job.figures.pages_failed ?? 0;
  $("retry-count").textContent = job.figures.retries ?? 0;
  $("output").textContent = job.output || "-";
  $("stop").disabled = job.status !== "running";
  $("resume").disabled = job.status === "running" || !job.resumable;
}

async function refresh(name) {
  const enc = encodeURIComponent(name);
  const charts = await fetch(`/api/jobs/${enc}/charts`);
  if (charts.ok && name === current) $("charts").innerHTML = await charts.text();  // the server's own SVG
  try {
    const items = await api(`/api/jobs/${enc}/items?tail=10`);
    $("items").textContent = items.items.map((i) => JSON.stringify(i)).join("\n");
  } catch (e) { $("items").textContent = ""; }
  const log = await api(`/api/jobs/${enc}/log?tail=40`);
  $("log").textContent = log.lines.join("\n");
  $("errors").textContent = log.errors.slice(-10).join("\n");
}

function show(name) {
  current = name;
  $("job").hidden = false;
  $("report-link").href = `/jobs/${encodeURIComponent(name)}/report`;
  $("output-link").href = `/api/jobs/${encodeURIComponent(name)}/output`;
  if (stream) stream.close();
  stream = new EventSource(`/api/jobs/${encodeURIComponent(name)}/events`);
  stream.addEventListener("update", (event) => {
    const job = JSON.parse(event.data);
    if (job.name !== current) return;
    render(job);
    refresh(job.name);
    loadJobs();
  });
  loadJobs();
}

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("form-error").textContent = "";
  const body = {spider: $("spider-select").value, args: pairs($("job-args").value),
                settings: pairs($("job-settings").value)};
  if ($("job-name").value.trim()) body.job = $("job-name").value.trim();
  try {
    const started = await api("/api/jobs", {method: "POST", headers: {"Content-Type": "application/json"},
                                            body: JSON.stringify(body)});
    show(started.name);
  } catch (e) { $("form-error").textContent = e.message; }
});

async function act(what) {
  try {
    await api(`/api/jobs/${encodeURIComponent(current)}/${what}`,
              {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
  } catch (e) { $("form-error").textContent = e.message; }
  loadJobs();
}
$("stop").addEventListener("click", () => act("stop"));
$("resume").addEventListener("click", () => act("resume"));

loadSpiders().catch((e) => { $("form-error").textContent = e.message; });
loadJobs();
setInterval(loadJobs, 5000);
"""
