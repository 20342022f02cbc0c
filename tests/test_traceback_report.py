"""The traceback report page: self-contained, escaped, linked, and rendered by a browser.

The browser half opens the written file in headless Chromium (Debian packages ``chromium``
and ``chromium-driver``, found as tests/test_view.py finds them) and is skipped without it.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
from browser_helpers import chromium, needs_chromium

from pipeline.traceback.report import render_html, write_report

EVIL = "<script>alert('x')</script>"
LAYERS = ["L5", "L4", "L3", "L2", "L1"]


def _metric(rng: np.random.Generator, metric: str, stage: str, unit: str, worse: str | None,
            t_mean: float, r_mean: float, anomalous: bool, run: str, plot: bool = False,
            n_t: int = 4, n_r: int = 14) -> dict:
    """One compared metric, its statistics from its own (rounded) values."""
    t = [round(float(x), 4) for x in rng.normal(t_mean, abs(t_mean) * 0.08 + 1e-3, n_t)]
    r = [round(float(x), 4) for x in rng.normal(r_mean, abs(r_mean) * 0.08 + 1e-3, n_r)]
    diff = float(np.mean(t) - np.mean(r))
    return {"metric": metric, "stage": stage, "unit": unit, "worse": worse, "plot": plot,
            "what": f"{metric} per {unit}",
            "target": {"n": n_t, "mean": float(np.mean(t)), "values": t},
            "reference": {"n": n_r, "mean": float(np.mean(r)), "values": r},
            "difference": diff, "relative": diff / r_mean, "ci95": [diff * 1.4, diff * 0.6],
            "effect_size": diff / (abs(r_mean) * 0.08 + 1e-3),
            "p": 0.0004 if anomalous else 0.41, "p_adjusted": 0.002 if anomalous else 0.8,
            "anomalous": anomalous, "stage_runs": [run]}


def sample_report() -> dict:
    rng = np.random.default_rng(7)
    runs = {"graph": "graph-1a2b3c4d5e6f", "synapses": "synapses-0f9e8d7c6b5a",
            "affinities": "affinities-77aa88bb99cc", "agglomerate": "agglomerate-1234abcd5678",
            "align": "align-aa00bb11cc22", "ingest": "ingest-5e5e5e5e5e5e"}
    empty = {"metric": "residual_px", "stage": "align", "unit": "section", "worse": "higher",
             "plot": True, "target": {"n": 0, "mean": None, "values": []},
             "reference": {"n": 0, "mean": None, "values": []}, "difference": None,
             "relative": None, "ci95": None, "effect_size": None, "p": None,
             "p_adjusted": None, "anomalous": False, "stage_runs": [runs["align"]]}
    layers = [
        {"layer": "L5", "name": "graph", "verdict": "differs", "metrics": [
            _metric(rng, "synapses", "graph", "block", "lower", 10, 15, True, runs["graph"],
                    plot=True),
            _metric(rng, "bodies", "graph", "block", None, 22, 21, False, runs["graph"])]},
        {"layer": "L4", "name": "synapses", "verdict": "anomalous", "metrics": [
            _metric(rng, "detection_confidence", "synapses", "block", "lower", 0.55, 0.8,
                    True, runs["synapses"], plot=True),
            _metric(rng, "partner_distance_nm", "synapses", "synapse", "higher", 210, 205,
                    False, runs["synapses"], n_t=30, n_r=600)]},
        {"layer": "L3", "name": "segmentation", "verdict": "anomalous", "metrics": [
            _metric(rng, "boundary_affinity", "affinities", "block", "lower", 0.6, 0.85, True,
                    runs["affinities"], plot=True),
            _metric(rng, "merge_score", "agglomerate", "block", "higher", 0.3, 0.29, False,
                    runs["agglomerate"])],
         "not_compared": ["bodies_ending_inside (agglomerate, per section)"]},
        {"layer": "L2", "name": "alignment", "verdict": "normal", "metrics": [
            _metric(rng, "ncc", "align", "section", "lower", 0.91, 0.92, False, runs["align"]),
            empty]},
        {"layer": "L1", "name": "images", "verdict": "anomalous", "metrics": [
            _metric(rng, "membrane_contrast", "ingest", "block", "lower", 0.18, 0.3, True,
                    runs["ingest"], plot=True),
            _metric(rng, "saturated_fraction", "ingest", "block", "higher", 0.01, 0.01, False,
                    runs["ingest"])]},
    ]
    layers[1]["metrics"][1]["effect_size"] = None  # a None number, shown as a dash
    grid = [[round(0.3 + 0.01 * (c - r), 3) for c in range(8)] for r in range(8)]
    for r in range(4, 8):
        for c in range(4, 8):
            grid[r][c] = round(grid[r][c] - 0.12, 3)
    grid[0][7] = None
    syn = [[15 + (r + c) % 3 for c in range(8)] for r in range(8)]
    for r in range(4, 8):
        syn[r][4:] = [10, 9, 11, 10]
    return {
        "title": "cxgraph traceback", "workspace": "/path/ws", "created": "2026-12-02T14:00:00Z",
        "region": {"name": "corner", "box": [0, 24, 192, 384, 192, 384]},
        "reference": {"name": "rest of the volume", "box": None},
        "conclusion": "processing-artifact", "root_cause_layer": "L1",
        "summary": "The region has 31% fewer synapses per block; the deepest anomalous layer "
                   f"is L1 (membrane contrast -40%). {EVIL}",
        "chain": [{"layer": "L5", "anomalous": True, "text": "synapses -31%"},
                  {"layer": "L4", "anomalous": True, "text": "detection_confidence -31%"},
                  {"layer": "L3", "anomalous": True, "text": "boundary_affinity -29%"},
                  {"layer": "L2", "anomalous": False, "text": "normal"},
                  {"layer": "L1", "anomalous": True,
                   "text": "membrane_contrast -40%: staining - root cause"}],
        "graph_check": {"metric": "synapses in region", "tables": 120, "graph": 120,
                        "agree": True},
        "layers": layers,
        "maps": [{"layer": "L1", "metric": "membrane_contrast",
                  "title": "L1 membrane contrast (mean over z)", "grid": grid,
                  "region_cells": [4, 8, 4, 8]},
                 {"layer": "L5", "metric": "synapses", "title": "L5 synapses per block",
                  "grid": syn, "region_cells": [4.0, 8.0, 4.0, 8.0]}],
        "actions": [
            {"kind": "flag", "text": "Region 'corner' flagged: processing-artifact, root cause "
                                     "L1 membrane_contrast -40% (p = 0.002)"},
            {"kind": "rerun", "text": "re-run affinities with per-block grey normalisation",
             "command": "cxgraph rerun --workspace /path/ws --region 0:24,192:384,192:384 "
                        "--from-stage affinities --set affinities.normalise=block"},
            {"kind": "proofread", "text": "top proofreading tasks in the region",
             "items": [{"body_a": 1 + i, "body_b": 100 + i, "score": round(0.4 - i / 200, 3),
                        "reason": EVIL if i == 0 else "low boundary affinity"}
                       for i in range(60)]}],
        "provenance": {"stage_runs": {
            rid: {"stage": stage, "status": "done", "identity": f"ab12{i}cd34",
                  "code_revision": "0e6c1bb", "started_at": f"2026-12-02 13:0{i}:00"}
            for i, (stage, rid) in enumerate(runs.items()) if stage != "align"}},
    }


def _plotted(report: dict) -> int:
    return sum(1 for lay in report["layers"] for m in lay["metrics"]
               if m.get("plot") and (m["target"]["values"] or m["reference"]["values"]))


def test_files_are_written_self_contained_escaped_and_linked(tmp_path):
    report = sample_report()
    html_path, json_path = write_report(report, tmp_path / "out" / "trace.html")
    assert (html_path, json_path) == (tmp_path / "out" / "trace.html",
                                      tmp_path / "out" / "trace.json")
    assert html_path.exists() and json_path.exists()
    assert not [p for p in html_path.parent.iterdir() if p.name.endswith(".tmp")]
    assert json.loads(json_path.read_text()) == report
    page = html_path.read_text()
    assert page == render_html(report)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//|@import", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    for layer in LAYERS:
        assert f'id="layer-{layer}"' in page or f"id='layer-{layer}'" in page
    assert "root cause layer: <b>L1</b>" in page and "Processing artifact" in page
    links = set(re.findall(r'href="#run-([^"]+)"', page))
    anchors = set(re.findall(r'id="run-([^"]+)"', page))
    assert links and links <= anchors  # the align run, not in provenance, still has a row
    assert "align-aa00bb11cc22" in anchors
    assert page.count("<svg") == len(report["maps"]) + _plotted(report)
    assert "—" in page  # the None numbers
    assert "10 more not shown" in page  # proofreading capped at 50 rows
    assert "affinities.normalise=block</pre>" in page
    # without a suffix, the same two names
    h2, j2 = write_report(report, tmp_path / "out" / "trace")
    assert (h2, j2) == (html_path, json_path)


def test_missing_optional_keys_still_render():
    bare = {"conclusion": "no-difference", "root_cause_layer": None, "summary": "nothing",
            "layers": [{"layer": "L5", "name": "graph", "verdict": "no data", "metrics": []}]}
    page = render_html(bare)
    assert "No difference" in page and "<svg" not in page
    odd = sample_report()
    odd["maps"] = [{"title": "empty", "grid": []}, {"title": "holes", "grid": [[None, None]]}]
    odd["actions"] = [{"kind": "proofread", "text": "none", "items": []}, {"kind": "rerun",
                                                                          "text": "no command"}]
    odd.pop("provenance")
    page = render_html(odd)
    assert "no items" in page and page.count("<svg") == 1 + _plotted(odd)
    anchors = set(re.findall(r'id="run-([^"]+)"', page))
    assert set(re.findall(r'href="#run-([^"]+)"', page)) <= anchors


@needs_chromium
def test_page_renders_in_chromium(tmp_path):
    from PIL import Image

    report = sample_report()
    html_path, _ = write_report(report, tmp_path / "trace")
    driver = chromium(tmp_path)
    try:
        driver.get(html_path.resolve().as_uri())
        assert "corner" in driver.title
        png = driver.get_screenshot_as_png()
        (tmp_path / "trace.png").write_bytes(png)
        img = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
        assert img.shape[1] >= 800 and img.std() > 10, "the screenshot is blank"
        assert driver.execute_script("return document.body.scrollHeight") > 1000
        n_svg = driver.execute_script("return document.querySelectorAll('svg').length")
        assert n_svg >= len(report["maps"]) + _plotted(report)
        widths = driver.execute_script(
            "return Array.from(document.querySelectorAll('svg')).map(s => s.getBBox().width)")
        assert all(w > 0 for w in widths), widths
        # the region outline sits inside its heat map
        assert driver.execute_script(
            "return document.querySelectorAll('rect[stroke=\"#ff1744\"]').length") == 2
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "favicon.ico" not in e["message"]]
        assert not errors, json.dumps(errors, indent=1)
    finally:
        driver.quit()
