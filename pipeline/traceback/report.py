"""The traceback report as one self-contained HTML page (and its JSON beside it).

The page has to open on a machine with no network and a long time after the run:
styles are inline, plots are SVG drawn here, and nothing is fetched. Every string
that comes from the report is escaped, because region names, reasons and commands
are written by users and pipeline stages. Sections follow the question the report
answers: the verdict first, then the chain L5 -> root cause, then the evidence per
layer, the maps, what to do, and the stage runs that made the numbers.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from cxgraph.workspace import atomic_write_bytes

DASH = "—"
CONCLUSIONS = {"processing-artifact": ("Processing artifact", "bad"),
               "processing-anomaly": ("Processing anomaly, no effect on the graph", "warn"),
               "biology": ("Biology", "good"),
               "no-difference": ("No difference", "none")}
VERDICT_CLASS = {"anomalous": "bad", "differs": "bad", "normal": "good", "same": "good"}
# viridis sampled at nine points: enough for a smooth ramp by linear interpolation
VIRIDIS = np.array([[68, 1, 84], [72, 40, 120], [62, 73, 137], [49, 104, 142], [38, 130, 142],
                    [31, 158, 137], [53, 183, 121], [110, 206, 88], [253, 231, 37]], float)
MAX_POINTS = 400  # per distribution in a strip plot; more only hides the means
MAX_ROWS = 50  # proofreading items shown

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
 margin:0 auto;max-width:1200px;padding:16px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc}
h3{font-size:15px;margin:16px 0 6px}.meta{color:#666}
.banner{border-radius:8px;padding:14px 18px;margin:14px 0;color:#fff}
.banner .big{font-size:26px;font-weight:700}.banner.bad{background:#b3261e}
.banner.warn{background:#b26a00}.banner.good{background:#2e7d32}.banner.none{background:#546e7a}
.chain{display:flex;flex-wrap:wrap;align-items:stretch;gap:6px}
.step{border:2px solid #90a4ae;border-radius:6px;padding:6px 10px;max-width:260px;
 background:#f5f7f8}
.step.bad{border-color:#b3261e;background:#fdecea}.step b{display:block}
.arrow{align-self:center;font-size:22px;color:#777}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f2f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.anom td{background:#fdecea}.v{font-weight:600;padding:1px 6px;border-radius:4px}
.v.bad{background:#fdecea;color:#b3261e}.v.good{background:#e8f5e9;color:#2e7d32}
.v.none{background:#eceff1;color:#546e7a}.plots{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:6px 0}figcaption{font-size:12px;color:#555;max-width:420px}
pre{background:#263238;color:#eceff1;padding:10px 12px;border-radius:6px;white-space:pre-wrap;
 word-break:break-all;user-select:all}
a{color:#1565c0}td a{white-space:nowrap}tr:target td{background:#fff8c4}
"""


# --- formatting ------------------------------------------------------------------------


def _e(x: Any) -> str:
    """Escaped text of anything; None is a dash."""
    return DASH if x is None else html.escape(str(x), quote=True)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _num(x: Any) -> str:
    """Three significant digits; integers in full; non-numbers escaped as text."""
    if x is None:
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if not _is_num(x):
        return _e(x)
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return DASH
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if 1e3 <= abs(x) < 1e6:
        return f"{float(f'{x:.3g}'):.0f}"
    return f"{x:.3g}"


def _pct(rel: Any) -> str:
    return f"{float(rel) * 100:+.3g}%" if _is_num(rel) and math.isfinite(rel) else DASH


def _ci(ci: Any) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return f"[{_num(ci[0])}, {_num(ci[1])}]"
    return DASH


def _tag(name: str, body: str, **attrs: Any) -> str:
    a = "".join(f' {k.rstrip("_").replace("_", "-")}="{_e(v)}"' for k, v in attrs.items()
                if v is not None)
    return f"<{name}{a}>{body}</{name}>"


def _table(head: list[str], rows: list[str]) -> str:
    """A table from escaped header words and already-rendered <tr> rows."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _verdict(v: Any) -> str:
    return _tag("span", _e(v or "no data"), class_=f"v {VERDICT_CLASS.get(v, 'none')}")


def _box(box: Any) -> str:
    """The graph's boxes are [z0, z1, y0, y1, x0, x1]."""
    if isinstance(box, (list, tuple)) and len(box) == 6:
        return ", ".join(f"{a} {box[2 * i]}:{box[2 * i + 1]}" for i, a in enumerate("zyx"))
    return "whole volume" if box is None else str(box)


# --- header, chain, overview -------------------------------------------------------


def _header(r: dict) -> str:
    reg, ref = r.get("region") or {}, r.get("reference") or {}
    words, cls = CONCLUSIONS.get(r.get("conclusion"), (r.get("conclusion") or "unknown", "none"))
    root = r.get("root_cause_layer")
    return (f"<h1>{_e(r.get('title', 'cxgraph traceback'))}: {_e(reg.get('name'))}</h1>"
            f"<div class='meta'>region {_e(_box(reg.get('box')))} vs {_e(ref.get('name'))}"
            f" ({_e(_box(ref.get('box')))}) &middot; workspace {_e(r.get('workspace'))}"
            f" &middot; created {_e(r.get('created'))}</div>"
            f"<div class='banner {cls}'><div class='big'>{_e(words)}</div>"
            f"<div>root cause layer: <b>{_e(root or 'none')}</b></div>"
            f"<p>{_e(r.get('summary', ''))}</p></div>")


def _chain(r: dict) -> str:
    steps = [f"<div class='step{' bad' if s.get('anomalous') else ''}'><b>{_e(s.get('layer'))}"
             f"</b>{_e(s.get('text', ''))}</div>" for s in r.get("chain") or []]
    body = "<span class='arrow'>&rarr;</span>".join(steps) or "<p>no chain</p>"
    return f"<h2>Chain</h2><div class='chain'>{body}</div>"


def _strongest(layer: dict) -> dict | None:
    """The layer's headline metric, else the one with the largest effect."""
    if layer.get("strongest"):
        return layer["strongest"]
    ms = [m for m in layer.get("metrics") or [] if _is_num(m.get("effect_size"))
          and math.isfinite(m["effect_size"])]
    return max(ms, key=lambda m: abs(m["effect_size"]), default=None)


def _overview(r: dict) -> str:
    rows = []
    for lay in r.get("layers") or []:
        s = _strongest(lay) or {}
        rows.append(f"<tr><td><a href='#layer-{_e(lay.get('layer'))}'>{_e(lay.get('layer'))}"
                    f"</a></td><td>{_e(lay.get('name'))}</td><td>{_verdict(lay.get('verdict'))}"
                    f"</td><td>{_e(s.get('metric'))}</td>"
                    f"<td class='num'>{_pct(s.get('relative'))}</td></tr>")
    return "<h2>Layers</h2>" + _table(
        ["layer", "name", "verdict", "strongest metric", "relative difference"], rows)


def _graph_check(r: dict) -> str:
    g = r.get("graph_check") or {}
    agree = g.get("agree")
    word = DASH if agree is None else ("yes" if agree else "NO")
    row = (f"<tr><td>{_e(g.get('metric'))}</td><td class='num'>{_num(g.get('tables'))}</td>"
           f"<td class='num'>{_num(g.get('graph'))}</td><td>{_e(word)}</td></tr>")
    return ("<h2>Graph check</h2><p>The same figure computed from the stage tables and read "
            "back from Neo4j: they must agree for L5 to be trusted.</p>"
            + _table(["metric", "from tables", "from Neo4j", "agree"], [row]))


# --- layers ---------------------------------------------------------------------------


def _finite(values: Any) -> np.ndarray:
    v = np.array([x for x in values or [] if _is_num(x)], float)
    return v[np.isfinite(v)]


def _strip_svg(m: dict) -> str:
    """Target vs reference as dots (jittered, fixed seed) with each mean as a bar."""
    groups = [("region", m.get("target") or {}, "#b3261e"),
              ("reference", m.get("reference") or {}, "#1565c0")]
    vals = [_finite(g.get("values")) for _, g, _ in groups]
    if not any(len(v) for v in vals):
        return ""
    allv = np.concatenate(vals)
    lo, hi = float(allv.min()), float(allv.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 - abs(lo) * 0.1, hi + 0.5 + abs(hi) * 0.1
    w, h, left, right = 360, 96, 78, 12

    def sx(x: float) -> float:
        return left + (x - lo) / (hi - lo) * (w - left - right)

    rng = np.random.default_rng(0)
    parts = []
    for i, ((label, g, col), v) in enumerate(zip(groups, vals, strict=True)):
        y = 22 + i * 34
        if len(v) > MAX_POINTS:
            v = v[np.linspace(0, len(v) - 1, MAX_POINTS).astype(int)]
        for x, j in zip(v, rng.uniform(-8, 8, len(v)), strict=True):
            parts.append(f"<circle cx='{sx(x):.1f}' cy='{y + j:.1f}' r='2.6' fill='{col}' "
                         f"fill-opacity='0.55'/>")
        mean = g.get("mean") if _is_num(g.get("mean")) else (v.mean() if len(v) else None)
        if mean is not None and math.isfinite(mean):
            parts.append(f"<line x1='{sx(mean):.1f}' x2='{sx(mean):.1f}' y1='{y - 12}' "
                         f"y2='{y + 12}' stroke='{col}' stroke-width='3'/>")
        parts.append(f"<text x='4' y='{y + 4}' font-size='11'>{_e(label)} n={len(v)}</text>")
    axis = (f"<line x1='{left}' x2='{w - right}' y1='{h - 18}' y2='{h - 18}' stroke='#999'/>"
            f"<text x='{left}' y='{h - 4}' font-size='10'>{_num(lo)}</text>"
            f"<text x='{w - right}' y='{h - 4}' font-size='10' text-anchor='end'>{_num(hi)}"
            f"</text>")
    cap = f"{m.get('metric')} per {m.get('unit')} ({m.get('stage')}); bars: means"
    return (f"<figure><svg width='{w}' height='{h}' "
            f"viewBox='0 0 {w} {h}' role='img'>{''.join(parts)}{axis}</svg>"
            f"<figcaption>{_e(cap)}</figcaption></figure>")


def _runs_links(ids: Any) -> str:
    return ", ".join(f'<a href="#run-{_e(i)}">{_e(i)}</a>' for i in ids or []) or DASH


def _metric_row(m: dict) -> str:
    t, ref = m.get("target") or {}, m.get("reference") or {}
    cells = [_e(m.get("stage")), _e(m.get("unit")), _e(m.get("worse")),
             f"{_num(t.get('n'))} / {_num(ref.get('n'))}"]
    nums = [_num(t.get("mean")), _num(ref.get("mean")), _pct(m.get("relative")),
            _ci(m.get("ci95")), _num(m.get("effect_size")), _num(m.get("p")),
            _num(m.get("p_adjusted"))]
    anom = bool(m.get("anomalous"))
    return (f"<tr{' class=anom' if anom else ''}><td title='{_e(m.get('what', ''))}'>"
            f"{_e(m.get('metric'))}</td>" + "".join(f"<td>{c}</td>" for c in cells)
            + "".join(f"<td class='num'>{c}</td>" for c in nums)
            + f"<td>{'yes' if anom else 'no'}</td><td>{_runs_links(m.get('stage_runs'))}</td></tr>")


def _layer(lay: dict) -> str:
    ms = lay.get("metrics") or []
    head = ["metric", "stage", "unit", "worse", "n target / ref", "target mean",
            "reference mean", "relative", "95% CI of difference", "effect size",
            "permutation p", "p (Holm)", "anomalous", "stage runs"]
    table = _table(head, [_metric_row(m) for m in ms]) if ms else "<p>no metrics</p>"
    plots = "".join(_strip_svg(m) for m in ms if m.get("plot"))
    skipped = lay.get("not_compared") or []
    note = (f"<p class='meta'>not compared (the region cannot be told apart on these): "
            f"{_e(', '.join(map(str, skipped)))}</p>" if skipped else "")
    return (f"<section id='layer-{_e(lay.get('layer'))}'><h3>{_e(lay.get('layer'))} "
            f"{_e(lay.get('name'))} &middot; {_verdict(lay.get('verdict'))}</h3>{table}{note}"
            f"<div class='plots'>{plots}</div></section>")


# --- heat maps ------------------------------------------------------------------------


def _ramp(t: float) -> str:
    """Viridis-like colour of t in [0, 1]."""
    xs = np.linspace(0, 1, len(VIRIDIS))
    rgb = [int(round(np.interp(t, xs, VIRIDIS[:, k]))) for k in range(3)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _grid(raw: Any) -> np.ndarray:
    rows = [list(r or []) for r in raw or []]
    width = max((len(r) for r in rows), default=0)
    g = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            if _is_num(v):
                g[i, j] = float(v)
    return g


def _heatmap_svg(mp: dict, idx: int) -> str:
    """Cells coloured by value (grey: no data), the region outlined, a colour bar."""
    g = _grid(mp.get("grid"))
    if g.size == 0:
        return f"<figure><p>no data</p><figcaption>{_e(mp.get('title'))}</figcaption></figure>"
    nr, nc = g.shape
    cell = max(4, min(40, 360 // max(nr, nc)))
    ok = np.isfinite(g)
    lo, hi = (float(g[ok].min()), float(g[ok].max())) if ok.any() else (0.0, 0.0)
    span = hi - lo if hi - lo > 1e-12 else 1.0
    parts = []
    for i in range(nr):
        for j in range(nc):
            v = g[i, j]
            fill = _ramp((v - lo) / span) if ok[i, j] else "#bdbdbd"
            parts.append(f"<rect x='{j * cell}' y='{i * cell}' width='{cell}' height='{cell}' "
                         f"fill='{fill}'><title>y {i}, x {j}: {_num(v)}</title></rect>")
    rc = mp.get("region_cells")
    if isinstance(rc, (list, tuple)) and len(rc) == 4 and all(_is_num(x) for x in rc):
        r0, r1, c0, c1 = (float(x) for x in rc)
        parts.append(f"<rect x='{c0 * cell:.1f}' y='{r0 * cell:.1f}' width='{(c1 - c0) * cell:.1f}'"
                     f" height='{(r1 - r0) * cell:.1f}' fill='none' stroke='#ff1744' "
                     f"stroke-width='2.5'/>")
    w, top = nc * cell, nr * cell + 10
    stops = "".join(f"<stop offset='{t:.3f}' stop-color='{_ramp(t)}'/>"
                    for t in np.linspace(0, 1, 9))
    gid = f"ramp-{idx}"
    bar = (f"<defs><linearGradient id='{gid}'>{stops}</linearGradient></defs>"
           f"<rect x='0' y='{top}' width='{max(w, 120)}' height='10' fill='url(#{gid})'/>"
           f"<text x='0' y='{top + 24}' font-size='11'>{_num(lo) if ok.any() else DASH}</text>"
           f"<text x='{max(w, 120)}' y='{top + 24}' font-size='11' text-anchor='end'>"
           f"{_num(hi) if ok.any() else DASH}</text>")
    sw, sh = max(w, 120), top + 30
    return (f"<figure><svg width='{sw}' height='{sh}' "
            f"viewBox='0 0 {sw} {sh}' role='img'>{''.join(parts)}{bar}</svg>"
            f"<figcaption>{_e(mp.get('title'))} &middot; red outline: the region; grey: no "
            f"data</figcaption></figure>")


def _maps(r: dict) -> str:
    maps = r.get("maps") or []
    if not maps:
        return ""
    body = "".join(_heatmap_svg(mp, i) for i, mp in enumerate(maps))
    return f"<h2>Maps</h2><div class='plots'>{body}</div>"


# --- actions and provenance -------------------------------------------------------------


def _cell(v: Any) -> str:
    if isinstance(v, (dict, list, tuple)):
        return _e(json.dumps(v, default=str))
    return _num(v) if _is_num(v) or isinstance(v, bool) else _e(v)


def _keys(items: list[dict]) -> list[str]:
    """Columns: every key, in order of first appearance."""
    return list(dict.fromkeys(k for it in items for k in it))


def _items_table(items: list[dict]) -> str:
    items = [it for it in items or [] if isinstance(it, dict)]
    if not items:
        return "<p class='meta'>no items</p>"
    keys = _keys(items)
    rows = ["<tr>" + "".join(f"<td>{_cell(it.get(k))}</td>" for k in keys) + "</tr>"
            for it in items[:MAX_ROWS]]
    more = f"<p class='meta'>{len(items) - MAX_ROWS} more not shown</p>" \
        if len(items) > MAX_ROWS else ""
    return _table(keys, rows) + more


def _action(a: dict) -> str:
    kind = a.get("kind", "")
    body = f"<p><b>{_e(kind)}</b>: {_e(a.get('text', ''))}</p>"
    if kind == "rerun" and a.get("command"):
        body += f"<pre>{_e(a['command'])}</pre>"
    if kind == "proofread":
        body += _items_table(a.get("items") or [])
    return f"<div class='action'>{body}</div>"


def _actions(r: dict) -> str:
    acts = r.get("actions") or []
    return "<h2>Actions</h2>" + ("".join(_action(a) for a in acts) or "<p>none</p>")


def _provenance(r: dict) -> str:
    """Every stage run a metric cites gets a row (and an anchor), recorded or not."""
    runs = dict((r.get("provenance") or {}).get("stage_runs") or {})
    for lay in r.get("layers") or []:
        for m in lay.get("metrics") or []:
            for rid in m.get("stage_runs") or []:
                runs.setdefault(rid, {"status": "not in the provenance store"})
    first = ["stage", "status", "identity", "code_revision"]
    keys = first + [k for k in _keys([v for v in runs.values() if isinstance(v, dict)])
                    if k not in first]
    rows = [f'<tr id="run-{_e(rid)}"><td>{_e(rid)}</td>'
            + "".join(f"<td>{_cell((info or {}).get(k))}</td>" for k in keys) + "</tr>"
            for rid, info in runs.items()]
    return "<h2>Provenance</h2>" + (_table(["id", *keys], rows) if rows else "<p>none</p>")


# --- entry points -----------------------------------------------------------------------


def render_html(report: dict) -> str:
    """The whole page, one string; nothing in it loads from anywhere else."""
    name = (report.get("region") or {}).get("name")
    title = f"{report.get('title', 'cxgraph traceback')}: {name}"
    layers = "".join(_layer(lay) for lay in report.get("layers") or [])
    body = (_header(report) + _chain(report) + _overview(report) + _graph_check(report)
            + f"<h2>Evidence per layer</h2>{layers}" + _maps(report) + _actions(report)
            + _provenance(report))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    """Write OUT.html and OUT.json (``out`` with or without either suffix)."""
    out = Path(out)
    if out.suffix in (".html", ".json"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    html_path, json_path = (out.with_name(out.name + s) for s in (".html", ".json"))
    page = render_html(report)  # render first: a failure leaves no files behind
    atomic_write_bytes(json_path, json.dumps(report, indent=1, default=float).encode(), 0o644)
    atomic_write_bytes(html_path, page.encode(), 0o644)
    return html_path, json_path
