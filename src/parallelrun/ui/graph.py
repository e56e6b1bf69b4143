"""Where the boxes of a pipeline graph go: steps in columns by their depth in the data links,
the datasets they read on the left, edges labelled with the data that flows.

The browser draws the SVG from these coordinates and colours each step by its live status.

Example::

    layout(run["graph"])   # {"width", "height", "nodes": [...], "edges": [...]}
"""

from __future__ import annotations

NODE_W, NODE_H = 180, 54
GAP_X, GAP_Y = 90, 28
MARGIN = 16


def layout(graph: dict | None) -> dict:
    """Node boxes and edge polylines for the graph a run recorded (``graph.describe()``)."""
    steps = list((graph or {}).get("steps") or [])
    if not steps:
        return {"width": 0, "height": 0, "nodes": [], "edges": []}
    by_name = {s["name"]: s for s in steps}
    order = {name: i for i, name in enumerate((graph or {}).get("order") or by_name)}
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset = frozenset()) -> int:
        if name in depth:
            return depth[name]
        deps = [d for d in by_name[name].get("depends_on") or [] if d in by_name and d not in seen]
        depth[name] = 1 + max((depth_of(d, seen | {name}) for d in deps), default=-1)
        return depth[name]

    for name in by_name:
        depth_of(name)
    produced = {out: s["name"] for s in steps for out in s.get("outputs") or []}
    sources: dict[str, list[str]] = {}       # dataset label -> steps reading it
    for step in steps:
        for item in step.get("inputs") or []:
            text = str(item)
            if text.startswith("PipelineData ") and text.split(" ", 1)[1] in produced:
                continue
            sources.setdefault(text, []).append(step["name"])
    shift = 1 if sources else 0
    columns: dict[int, list[str]] = {}
    for name in sorted(by_name, key=lambda n: (depth[n], order.get(n, 0))):
        columns.setdefault(depth[name] + shift, []).append(name)
    if sources:
        columns[0] = [f"data:{label}" for label in sources]
    nodes, where = [], {}
    for column, names in sorted(columns.items()):
        for row, name in enumerate(names):
            x = MARGIN + column * (NODE_W + GAP_X)
            y = MARGIN + row * (NODE_H + GAP_Y)
            where[name] = (x, y)
            if name.startswith("data:"):
                label = name[5:]
                nodes.append({"id": name, "kind": "data", "label": label, "x": x, "y": y,
                              "w": NODE_W, "h": NODE_H})
            else:
                step = by_name[name]
                nodes.append({"id": f"step:{name}", "kind": "step", "step": name,
                              "step_kind": step.get("kind"), "label": name, "x": x, "y": y,
                              "w": NODE_W, "h": NODE_H})
    edges = []
    for step in steps:
        target = where[step["name"]]
        for dep in step.get("depends_on") or []:
            if dep not in where:
                continue
            data = [o for o in by_name[dep].get("outputs") or []
                    if f"PipelineData {o}" in (step.get("inputs") or [])]
            edges.append(_edge(f"step:{dep}", f"step:{step['name']}", where[dep], target,
                               ", ".join(data)))
    for label, readers in sources.items():
        for reader in readers:
            edges.append(_edge(f"data:{label}", f"step:{reader}", where[f"data:{label}"],
                               where[reader], ""))
    width = MARGIN * 2 + (max(columns) + 1) * NODE_W + max(columns) * GAP_X
    height = MARGIN * 2 + max(len(c) for c in columns.values()) * (NODE_H + GAP_Y) - GAP_Y
    return {"width": width, "height": height, "nodes": nodes, "edges": edges}


def _edge(source: str, target: str, a: tuple[int, int], b: tuple[int, int], label: str) -> dict:
    x1, y1 = a[0] + NODE_W, a[1] + NODE_H // 2
    x2, y2 = b[0], b[1] + NODE_H // 2
    return {"source": source, "target": target, "label": label,
            "points": [[x1, y1], [x2, y2]]}
