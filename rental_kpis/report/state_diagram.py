"""The Step Functions state machine drawn as a picture, read from ``stepfunctions/*.asl.json``.

The drawing is computed from the definition, never drawn by hand: states are laid out in layers
by their longest distance from ``StartAt`` (loop edges ignored for the layering), and every state
that can no longer reach success (the failure path), with the edges into it, is drawn in red.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from rental_kpis.aws.statemachine import Edge, edges, successors
from rental_kpis.report.charts import Chart

SUCCESS_COLOUR, FAILURE_COLOUR, LOOP_COLOUR = "#1f77b4", "#d62728", "#7f7f7f"
FILL = {"success": "#e8f1fa", "failure": "#fdeaea"}


@dataclass(frozen=True)
class Layout:
    """Where each state goes (column, layer) and which states are on the failure path."""

    positions: dict[str, tuple[float, int]]
    failure: frozenset[str]
    back_edges: frozenset[tuple[str, str]]


def failure_states(definition: Mapping[str, Any]) -> frozenset[str]:
    """States from which no path reaches a Succeed state (or a successful ``End``)."""
    states = definition["States"]
    incoming = successors(edges(definition), reverse=True)
    good = {
        n
        for n, s in states.items()
        if s["Type"] == "Succeed" or (s.get("End") and s["Type"] != "Fail")
    }
    frontier = list(good)
    while frontier:
        for source in incoming.get(frontier.pop(), ()):
            if source not in good:
                good.add(source)
                frontier.append(source)
    return frozenset(states) - good


def _back_edges(definition: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """Edges that close a loop (target is on the current depth-first path)."""
    out = successors(edges(definition))
    found: set[tuple[str, str]] = set()
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> None:
        on_path.add(name)
        for target in out.get(name, []):
            if target in on_path:
                found.add((name, target))
            elif target not in done:
                visit(target)
        on_path.discard(name)
        done.add(name)

    visit(definition["StartAt"])
    return frozenset(found)


def _main_path(definition: Mapping[str, Any], forward: list[Edge]) -> set[str]:
    """The longest loop-free path from ``StartAt`` to a Succeed state: drawn as one column."""
    states = definition["States"]
    out = successors(forward)
    best: dict[str, list[str] | None] = {}

    def longest(name: str) -> list[str] | None:
        if name not in best:
            if states[name]["Type"] == "Succeed":
                best[name] = [name]
            else:
                tails = [t for t in map(longest, out.get(name, [])) if t]
                best[name] = [name, *max(tails, key=len)] if tails else None
        return best[name]

    return set(longest(definition["StartAt"]) or [])


def layout(definition: Mapping[str, Any]) -> Layout:
    states = list(definition["States"])
    back = _back_edges(definition)
    forward = [e for e in edges(definition) if (e.source, e.target) not in back]
    layer = dict.fromkeys(states, 0)
    for _ in states:  # longest path by relaxation: at most one pass per state
        for edge in forward:
            layer[edge.target] = max(layer[edge.target], layer[edge.source] + 1)
    failure = failure_states(definition)
    spine = _main_path(definition, forward)
    positions: dict[str, tuple[float, int]] = {}
    for depth in sorted(set(layer.values())):
        in_layer = sorted(
            (s for s in states if layer[s] == depth and s not in failure),
            key=lambda s: s not in spine,
        )
        for column, name in enumerate(in_layer):
            positions[name] = (float(column), depth)
    for name in states:
        if name in failure:
            positions[name] = (2.4, layer[name])
    return Layout(positions, failure, back)


def _label(name: str, state: Mapping[str, Any]) -> str:
    kind = state["Type"]
    if kind == "Parallel":
        inner = " ‖ ".join(next(iter(b["States"])) for b in state["Branches"])
        return f"{name} (Parallel)\n{inner}"
    if kind == "Map":
        return f"{name}\nMap over the named queries"
    resource = str(state.get("Resource", ""))
    service = resource.split(":::")[-1].split(".sync")[0] if ":::" in resource else ""
    return f"{name}\n{kind}{': ' + service if service else ''}"


def draw(definition: Mapping[str, Any]) -> Chart:
    """The state machine as a figure, with a takeaway that counts what the picture shows."""
    plan = layout(definition)
    states = definition["States"]
    depth = max(layer for _, layer in plan.positions.values()) + 1
    figure = Figure(figsize=(10.5, 0.62 * depth + 1.2), layout="constrained")
    ax = figure.subplots()
    box_w, box_h = 1.8, 0.62

    def centre(name: str) -> tuple[float, float]:
        column, layer = plan.positions[name]
        return column * 2.2, -layer

    for edge in edges(definition):
        _arrow(ax, edge, centre(edge.source), centre(edge.target), plan, (box_w, box_h))
    for name, state in states.items():
        x, y = centre(name)
        kind = "failure" if name in plan.failure else "success"
        colour = FAILURE_COLOUR if kind == "failure" else SUCCESS_COLOUR
        ax.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2), box_w, box_h,
                boxstyle="round,pad=0.02,rounding_size=0.12",
                facecolor=FILL[kind], edgecolor=colour, linewidth=1.6, zorder=2,
            )
        )  # fmt: skip
        label = _label(name, state)
        size = 7.2 if max(map(len, label.splitlines())) <= 40 else 6.2
        ax.text(x, y, label, ha="center", va="center", fontsize=size, zorder=3)
    xs = [centre(n)[0] for n in states]
    ax.set_xlim(min(xs) - 1.1, max(xs) + 1.1)
    ax.set_ylim(-depth + 0.4, 0.6)
    ax.set_axis_off()
    ax.set_title(
        "Step Functions state machine: success path (blue), failure path (red), poll loop (grey)"
    )
    failure_edges = sum(1 for e in edges(definition) if e.target in plan.failure)
    takeaway = (
        f"{len(states)} states and {len(edges(definition))} transitions;"
        f" {failure_edges} of them lead into the {len(plan.failure)} failure-path states"
        f" ({', '.join(s for s in states if s in plan.failure)}), and"
        f" {len(plan.back_edges)} loops back to poll the crawler."
    )
    return Chart(figure, takeaway)


Point = tuple[float, float]


def _arrow(ax: Axes, edge: Edge, start: Point, end: Point, plan: Layout, box: Point) -> None:
    """Down the column between neighbours; out of the right side towards another column."""
    loop = (edge.source, edge.target) in plan.back_edges
    failing = edge.target in plan.failure and edge.source not in plan.failure
    colour = (
        LOOP_COLOUR if loop else FAILURE_COLOUR if edge.target in plan.failure else SUCCESS_COLOUR
    )
    same_column = abs(start[0] - end[0]) < 1e-9
    skips = abs(start[1] - end[1]) > 1
    rad = 0.5 if loop else 0.25 if (same_column and skips) else 0.0
    if same_column or loop:
        tail = (start[0], start[1] - (0 if loop else box[1] / 2))
        head = (end[0], end[1] + (0 if loop else box[1] / 2))
    else:
        tail = (start[0] + box[0] / 2, start[1])
        head = (end[0] - box[0] / 2, end[1]) if end[0] > start[0] else (end[0], end[1] + box[1] / 2)
    ax.add_patch(
        FancyArrowPatch(
            tail,
            head,
            arrowstyle="-|>", mutation_scale=10, linewidth=1.1, color=colour,
            linestyle="--" if failing or edge.kind == "catch" else "-",
            connectionstyle=f"arc3,rad={rad}", zorder=1,
            shrinkA=2 if not loop else 22, shrinkB=2 if not loop else 22,
        )
    )  # fmt: skip
