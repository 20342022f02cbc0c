"""A traceback's verdict in the graph: a ``(:Region)`` node analysts can find."""

from __future__ import annotations

import json

from cxgraph.graph.store import GraphStore

Q_FLAG = """
MERGE (r:Region {name: $name})
SET r.box = $box, r.flags = $flags, r.reason = $reason, r.conclusion = $conclusion,
    r.rootCauseLayer = $root, r.summary = $summary, r.createdAt = $created,
    r.verdicts = $verdicts, r.action = $action
"""


def flag_region(store: GraphStore, report: dict) -> None:
    """Create or update the Region node named by the report (MERGE on its name)."""
    acts = {a["kind"]: a for a in report["actions"]}
    z0, z1, y0, y1, x0, x1 = report["region"]["box"]  # the graph's boxes: begins, then ends
    store.write(Q_FLAG, {
        "name": report["region"]["name"], "box": [z0, y0, x0, z1, y1, x1],
        "flags": [report["conclusion"]] + ([f"root-cause:{report['root_cause_layer']}"]
                                           if report["root_cause_layer"] else []),
        "reason": acts.get("flag", {}).get("reason"),
        "conclusion": report["conclusion"], "root": report["root_cause_layer"],
        "summary": report["summary"], "created": report["created"],
        "verdicts": json.dumps({lay["layer"]: lay["verdict"] for lay in report["layers"]}),
        "action": acts.get("rerun", {}).get("command")})
