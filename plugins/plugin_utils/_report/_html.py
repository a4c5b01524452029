# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Self-contained HTML report: a summary, then a matrix of service x endpoint x layer.

One file, no external assets and no script: inline CSS only, and a
Content-Security-Policy that forbids anything else, so the page renders the
same from a CI artifact, a mail attachment or a file share.  Each cell is
coloured by status (and marked with a symbol, for readers who do not see the
colours), and each failed cell shows its remedy.  Light and dark follow the
reader's system setting.  Every string from the probes goes through Jinja2's
autoescape: a hostile ``detail`` stays text.
"""
from __future__ import annotations

from collections import OrderedDict

from jinja2 import Environment, StrictUndefined

from ansible_collections.mdmops.apple.plugins.plugin_utils._report import (
    build_report, endpoint, layer_key, severity,
)

SYMBOLS = {0: u"\u2713", 1: u"?", 2: u"\u2717"}     # check mark, question mark, ballot x
CLASSES = {0: "ok", 1: "inconclusive", 2: "bad"}

TEMPLATE = u"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="generator" content="mdmops.apple probe_html">
<title>{{ title }}{% if hostname %} from {{ hostname }}{% endif %}</title>
<style>
:root{color-scheme:light dark;
 --bg:#ffffff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--panel:#f6f8fa;
 --ok-bg:#dafbe1;--ok-fg:#116329;--ok-line:#4ac26b;
 --in-bg:#fff8c5;--in-fg:#6b4b00;--in-line:#d4a72c;
 --bad-bg:#ffebe9;--bad-fg:#a40e26;--bad-line:#ff8182;
 --alarm-bg:#a40e26;--alarm-fg:#ffffff;--none:#8c959f}
@media (prefers-color-scheme:dark){:root{
 --bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#30363d;--panel:#161b22;
 --ok-bg:#12261e;--ok-fg:#56d364;--ok-line:#238636;
 --in-bg:#272115;--in-fg:#e3b341;--in-line:#9e6a03;
 --bad-bg:#2d1214;--bad-fg:#ff7b72;--bad-line:#da3633;
 --alarm-bg:#ff7b72;--alarm-fg:#1a0002;--none:#6e7681}}
*{box-sizing:border-box}
body{margin:0;padding:24px 28px 40px;background:var(--bg);color:var(--fg);
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:16px;margin:28px 0 10px}
h3{font-size:14px;margin:0;font-weight:600}
.meta{color:var(--muted);margin:0 0 16px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
.verdict{border-radius:8px;padding:12px 16px;margin:0 0 16px;border:1px solid;font-weight:600;font-size:15px}
.verdict.ok{background:var(--ok-bg);color:var(--ok-fg);border-color:var(--ok-line)}
.verdict.inconclusive{background:var(--in-bg);color:var(--in-fg);border-color:var(--in-line)}
.verdict.bad{background:var(--bad-bg);color:var(--bad-fg);border-color:var(--bad-line)}
.verdict .why{display:block;font-weight:400;font-size:13px;margin-top:2px}
.alarm{background:var(--alarm-bg);color:var(--alarm-fg);border-radius:8px;padding:12px 16px;margin:0 0 16px}
.alarm strong{font-size:15px;display:block}
.alarm ul{margin:6px 0 0;padding-left:20px}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 14px}
.tile{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:110px}
.tile b{display:block;font-size:22px;line-height:1.2}
.tile span{color:var(--muted);font-size:12px}
.tile.ok b{color:var(--ok-fg)}.tile.bad b{color:var(--bad-fg)}.tile.inconclusive b{color:var(--in-fg)}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 6px;padding:0;list-style:none}
.chip{border:1px solid;border-radius:999px;padding:1px 10px;font-size:12.5px}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
thead th{background:var(--panel);font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.ok{background:var(--ok-bg);color:var(--ok-fg)}
.inconclusive{background:var(--in-bg);color:var(--in-fg)}
.bad{background:var(--bad-bg);color:var(--bad-fg)}
.chip.ok{border-color:var(--ok-line)}.chip.bad{border-color:var(--bad-line)}.chip.inconclusive{border-color:var(--in-line)}
td.none{color:var(--none);text-align:center}
.scroll{overflow-x:auto}
#matrix{table-layout:fixed;font-size:13px}
#matrix th.epcol{width:17%}
#matrix td{padding:5px 6px}
td.cell .status{white-space:nowrap}
td.cell .remedy,td.cell details{overflow-wrap:break-word}
td.cell.bad{border-left:4px solid var(--bad-line)}
.fix{margin:0;padding-left:20px}
.fix li{margin:0 0 6px}
.fix .where{font-weight:600}
.probe+.probe{border-top:1px dashed currentColor;margin-top:6px;padding-top:6px}
.status{font-weight:700}
.lat{color:var(--muted);font-size:12px;margin-left:6px}
.bad .lat,.ok .lat,.inconclusive .lat{color:inherit;opacity:.8}
.remedy{color:var(--fg);margin:4px 0 0;font-size:12.5px}
.remedy::before{content:"Remedy: ";font-weight:600}
details{margin-top:4px;font-size:12px;color:var(--fg)}
details summary{cursor:pointer;color:var(--muted)}
details p{margin:4px 0 0;white-space:pre-wrap;word-break:break-word}
.badge{display:inline-block;font-size:11px;font-weight:700;border-radius:4px;padding:0 6px;margin-left:6px;
 background:var(--alarm-bg);color:var(--alarm-fg);vertical-align:1px}
.badge.soft{background:transparent;color:inherit;border:1px solid currentColor}
th.service{background:var(--panel);font-size:13px;text-transform:none;letter-spacing:0;color:var(--fg)}
td.ep{overflow-wrap:anywhere}
td.ep .sub{display:block;color:var(--muted);font-size:12px}
.grid td{text-align:center;white-space:nowrap}
.grid td:first-child{text-align:left}
.legend{color:var(--muted);font-size:12.5px;margin-top:10px}
.legend span{display:inline-block;border-radius:4px;padding:0 6px;margin-right:4px}
footer{color:var(--muted);font-size:12px;margin-top:28px}
@media print{body{padding:0}details{display:none}}
</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }}{% if hostname %} on <b>{{ hostname }}</b>{% endif %}
 &middot; {{ summary.total }} probe{{ "" if summary.total == 1 else "s" }} from <code>{{ source }}</code>
 &middot; fail_on: {% if fail_on %}{% for s in fail_on %}<code>{{ s }}</code>{{ ", " if not loop.last }}{% endfor %}{% else %}none (informational)
{%- endif %}</p>
</header>
<section id="summary" aria-label="Summary">
<div id="verdict" class="verdict {{ verdict.cls }}">{{ verdict.headline }}<span class="why">{{ verdict.why }}</span></div>
{% if intercepted %}
<div id="interception" class="alarm" role="alert"><strong>HTTPS inspection detected on Apple push hosts</strong>
Apple requires that these hosts are never inspected: devices and MDM servers will not connect through it.
<ul>{% for p in intercepted %}<li><b>{{ p.endpoint }}</b> ({{ p.service }}, {{ p.layer }}): {{ p.detail or p.status }}
{%- if p.remedy %} &mdash; {{ p.remedy }}{% endif %}</li>{% endfor %}</ul></div>
{% endif %}
<div class="tiles">
<div class="tile"><b>{{ summary.total }}</b><span>probes</span></div>
<div class="tile ok"><b>{{ summary.ok }}</b><span>ok</span></div>
<div class="tile bad"><b>{{ summary.not_ok }}</b><span>not ok</span></div>
<div class="tile inconclusive"><b>{{ summary.inconclusive }}</b><span>inconclusive</span></div>
<div class="tile{{ ' bad' if summary.failed else '' }}"><b>{{ summary.failed }}</b><span>fail the run (fail_on)</span></div>
</div>
<ul class="chips" aria-label="Probes by status">
{%- for s, n in summary.by_status.items() %}<li class="chip {{ status_class(s) }}">{{ symbol(s) }} {{ s }}: {{ n }}</li>{% endfor %}</ul>
{% if fixes %}
<h2>What to fix</h2>
<ol class="fix" id="fixes">{% for f in fixes %}<li><span class="where mono">{{ f.where }}</span> <span class="chip {{ f.cls }}">{{ f.status }}</span>
{%- if f.failed %} <span class="badge soft">fails run</span>{% endif %}<br>{{ f.remedy }}</li>
{% endfor %}</ol>
{% endif %}
<h2>By service and layer</h2>
<table class="grid" id="service-layers">
<thead><tr><th>Service</th>{% for l in layers %}<th>{{ l }}</th>{% endfor %}</tr></thead>
<tbody>{% for service, per in summary.by_service_layer.items() %}<tr><td>{{ service }}</td>
{% for l in layers %}{% set c = grid_cell(per.get(l)) %}{% if c %}<td class="{{ c.cls }}" title="{{ c.title }}">{{ c.ok }}/{{ c.total }} ok</td>
{%- else %}<td class="none">&ndash;</td>{% endif %}{% endfor %}</tr>
{% endfor %}</tbody>
</table>
{% if certificates %}
<h2>Push certificates</h2>
<table id="certificates"><thead><tr><th>Topic</th><th>Expires (UTC)</th><th>Days left</th></tr></thead><tbody>
{% for c in certificates %}<tr><td class="mono">{{ c.topic }}</td><td>{{ c.not_after }}</td><td class="{{ c.cls }}">{{ c.days }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}
</section>
<section id="matrix-section" aria-label="Matrix">
<h2>Service &times; endpoint &times; layer</h2>
<div class="scroll"><table id="matrix">
<thead><tr><th class="epcol">Endpoint</th>{% for l in layers %}<th scope="col">{{ l }}</th>{% endfor %}</tr></thead>
<tbody>
{% for service, rows in matrix.items() %}<tr><th class="service" colspan="{{ layers|length + 1 }}" scope="rowgroup">{{ service }}</th></tr>
{% for row in rows %}<tr data-service="{{ service }}" data-endpoint="{{ row.endpoint }}">
<td class="ep mono">{{ row.endpoint }}{% if row.name %}<span class="sub">{{ row.name }}{% if row.address %} &middot; {{ row.address }}
{%- endif %}</span>{% elif row.address %}<span class="sub">{{ row.address }}</span>{% endif %}</td>
{% for l in layers %}{% set cell = row.cells.get(l) %}
{%- if cell %}<td class="cell {{ cell.cls }}" data-layer="{{ l }}" data-status="{{ cell.status }}">
{% for p in cell.probes %}<div class="probe"><span class="status">{{ symbol(p.status) }} {{ p.status }}</span>
{%- if p.latency_ms is not none %}<span class="lat">{{ ms(p.latency_ms) }}</span>{% endif %}
{% if p.status == "intercepted" %}<span class="badge">HTTPS inspection</span>{% endif %}{% if p.failed %}<span class="badge soft">fails run</span>
{%- endif %}
{% if p.severity == 2 and p.remedy %}<p class="remedy">{{ p.remedy }}</p>{% endif %}
{% if p.detail %}<details><summary>detail</summary><p>{{ p.detail }}</p></details>{% endif %}</div>
{% endfor %}</td>{% else %}<td class="none" data-layer="{{ l }}">&ndash;</td>{% endif %}{% endfor %}
</tr>
{% endfor %}{% endfor %}</tbody>
</table></div>
<p class="legend"><span class="ok">&#x2713; ok</span><span class="inconclusive">? inconclusive (no UDP answer, not probed)</span>
<span class="bad">&#x2717; not ok</span> &ndash; layer not probed. A cell marked <b>fails run</b> has a status listed in fail_on.</p>
</section>
<footer>mdmops.apple &middot; {{ title }} &middot; {{ generated }}</footer>
</body>
</html>
"""

_ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False)
_TEMPLATE = _ENV.from_string(TEMPLATE)


def _ms(value):
    if value >= 100:
        return "%d ms" % round(value)
    return "%.1f ms" % value


def _cell_class(probes):
    return CLASSES[max(severity(p["status"]) for p in probes)]


def matrix(report):
    """``{service: [row]}``; a row: endpoint, name, address, ``cells`` by layer (probes, class, worst status).

    Rows are endpoints (host and port); a port-less probe (a DNS lookup of a
    host) fills the dns cell of every row of its host, or a row of its own.
    """
    table = OrderedDict()
    portless = []
    for probe in report.probes:
        if probe["port"] is None and probe["layer"] == "dns":
            portless.append(probe)
            continue
        rows = table.setdefault(probe["service"], OrderedDict())
        key = (probe["host"], probe["port"])
        row = rows.setdefault(key, {"endpoint": endpoint(probe), "name": None, "address": None, "cells": {},
                                    "sort": (probe["host"], probe["port"])})
        if probe.get("name") and probe["name"] != probe["host"]:
            row["name"] = probe["name"]
        row["address"] = row["address"] or probe.get("address")
        row["cells"].setdefault(probe["layer"], []).append(probe)
    for probe in portless:
        rows = table.setdefault(probe["service"], OrderedDict())
        targets = [row for (host, _port), row in rows.items() if host == probe["host"]]
        if not targets:
            targets = [rows.setdefault((probe["host"], None), {
                "endpoint": endpoint(probe), "name": None, "address": probe.get("address"), "cells": {},
                "sort": (probe["host"], -1)})]
        for row in targets:
            row["cells"].setdefault("dns", []).append(probe)
    out = OrderedDict()
    for service, rows in table.items():
        listed = []
        for row in rows.values():
            cells = {}
            for layer, probes in row["cells"].items():
                shown = [dict(p, failed=report.failed(p), severity=severity(p["status"])) for p in probes]
                worst = max(shown, key=lambda p: (p["severity"], p["failed"]))
                cells[layer] = {"probes": shown, "cls": _cell_class(probes), "status": worst["status"]}
            listed.append({"endpoint": row["endpoint"], "name": row["name"], "address": row["address"],
                           "cells": cells})
        out[service] = listed
    return out


def _grid_cell(statuses):
    if not statuses:
        return None
    total = sum(statuses.values())
    ok = statuses.get("ok", 0)
    worst = max(severity(s) for s in statuses)
    return {"ok": ok, "total": total, "cls": CLASSES[worst],
            "title": ", ".join("%s: %d" % (s, n) for s, n in statuses.items())}


def _verdict(report, summary):
    if report.failures:
        statuses = sorted({p["status"] for p in report.failures})
        headline = u"\u2717 %d of %d probes fail the run" % (len(report.failures), summary["total"])
        return {"cls": "bad", "headline": headline,
                "why": "Statuses in fail_on found: %s. Each failed cell below says what to do." % ", ".join(statuses)}
    if summary["not_ok"]:
        return {"cls": "bad", "headline": u"\u2717 %d of %d probes are not ok" % (summary["not_ok"], summary["total"]),
                "why": ("None of their statuses is in fail_on, so this run does not fail; each failed cell below "
                        "says what to do.") if report.fail_on else
                       "fail_on is empty, so this report is informational; each failed cell below says what to do."}
    if summary["inconclusive"]:
        return {"cls": "inconclusive", "headline": u"? %d of %d probes ok, %d inconclusive" % (
            summary["ok"], summary["total"], summary["inconclusive"]),
            "why": "Inconclusive: a UDP service that did not answer, or an endpoint that was not probed."}
    if not summary["total"]:
        return {"cls": "inconclusive", "headline": "? No probes", "why": "The probe list was empty: nothing was shown reachable."}
    return {"cls": "ok", "headline": u"\u2713 All %d probes ok" % summary["total"],
            "why": "Every selected endpoint answered on every layer probed."}


def render_html(data, **kwargs):
    """The HTML page as text."""
    report = build_report(data, **kwargs)
    summary = report.summary()
    now = report.generated_at.timestamp()
    certificates = []
    for cert in report.certificates:
        days = int((cert["not_after_epoch"] - now) // 86400)
        certificates.append({"topic": cert["topic"], "not_after": cert["not_after"].replace("T", " ").rstrip("Z"),
                             "days": days, "cls": "bad" if days < 14 else "inconclusive" if days < 30 else "ok"})
    intercepted = [dict(p, endpoint=endpoint(p)) for p in report.intercepted()]
    layers = sorted({p["layer"] for p in report.probes}, key=layer_key)
    fixes, seen = [], set()
    for p in sorted(report.probes, key=lambda p: (not report.failed(p), -severity(p["status"]))):
        if severity(p["status"]) < 2 or not p["remedy"] or (p["status"], p["remedy"]) in seen:
            continue
        seen.add((p["status"], p["remedy"]))
        fixes.append({"where": "%s %s/%s" % (p["service"], endpoint(p), p["layer"]), "status": p["status"],
                      "remedy": p["remedy"], "failed": report.failed(p), "cls": CLASSES[severity(p["status"])]})
    return _TEMPLATE.render(
        title=report.title, hostname=report.hostname, source=report.source, fail_on=report.fail_on,
        generated=report.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC"), summary=summary, layers=layers,
        matrix=matrix(report), certificates=certificates, intercepted=intercepted,
        verdict=_verdict(report, summary), fixes=fixes, symbol=lambda s: SYMBOLS[severity(s)],
        status_class=lambda s: CLASSES[severity(s)], grid_cell=_grid_cell, ms=_ms,
    )
