"""Draw a ModelDeployment as text, the way ``kubectl argo rollouts get rollout`` does (pure).

A header (name, phase, canary step and weights), a tree (revisions, their Deployments, the
canary's analysis runs and metrics) and the conditions. Only what the object holds is drawn:
a missing field leaves its line out rather than inventing a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gantry.kubectl_plugin.view import (
    Analysis,
    AnalysisRun,
    Canary,
    Condition,
    ModelDeploymentView,
    Revision,
    view,
)

# Argo Rollouts' icons (pkg/kubectl-argo-rollouts/info and cmd/get), so the picture reads the
# same: alpha marks an analysis run there too; sigma (a sum) marks the counters of all runs.
OK, BAD, WAITING, PAUSED, UNKNOWN, NEUTRAL = "✔", "✖", "◌", "॥", "?", "•"
ICON_ROOT, ICON_REVISION, ICON_DEPLOYMENT = "⟳", "#", "⧉"
ICON_ANALYSIS, ICON_RUN = "Σ", "α"  # noqa: RUF001 (Greek on purpose)

PHASE_ICONS = {
    "Ready": OK,
    "Progressing": WAITING,
    "Pending": WAITING,
    "Paused": PAUSED,
    "Degraded": BAD,
    "Failed": BAD,
}
CANARY_ICONS = {"Progressing": WAITING, "Paused": PAUSED, "Promoted": OK, "Aborted": BAD}
VERDICT_ICONS = {"Successful": OK, "Failed": BAD, "Inconclusive": UNKNOWN, "Error": BAD}
# "Abnormality-true" conditions (kstatus' convention): True is the bad news.
ABNORMAL_TRUE = frozenset({"Degraded", "Stalled"})
# True while work is under way: neither good nor bad.
UNDER_WAY_TRUE = frozenset({"Reconciling", "Progressing"})

ANALYSES_SHOWN = 3


def status_text(icon: str, word: str) -> str:
    return f"{icon} {word}" if word else ""


def phase_icon(phase: str) -> str:
    return PHASE_ICONS.get(phase, UNKNOWN)


def condition_icon(cond: Condition) -> str:
    if cond.status not in ("True", "False"):
        return UNKNOWN
    true = cond.status == "True"
    if cond.type in ABNORMAL_TRUE:
        return BAD if true else OK
    if cond.type in UNDER_WAY_TRUE:
        return WAITING if true else OK
    return OK if true else BAD


def age(since: datetime | None, now: datetime) -> str:
    """kubectl's short ages: ``45s``, ``3m20s``, ``25m``, ``5h10m``, ``20h``, ``3d``."""
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    return f"{days}d"


def number(value: float) -> str:
    return f"{value:.4g}"


def table(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Left-aligned columns two spaces apart, trailing blanks dropped."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]


# --- header ----------------------------------------------------------------------------------


def step_text(canary: Canary, md: ModelDeploymentView) -> str:
    """``2/4 (setWeight 50)``; past the last step, the promotion phase."""
    index, total = canary.step_index, len(md.steps)
    if index is None:
        return ""
    if not total:
        return str(index + 1)
    if index >= total:
        return f"{total}/{total} (promotion)"
    return f"{index + 1}/{total} ({md.steps[index].text})"


def ratio(ready: int | None, desired: int | None) -> str:
    return f"{'?' if ready is None else ready}/{'?' if desired is None else desired}"


def overall_status(md: ModelDeploymentView) -> str:
    if md.deleting:
        return status_text(BAD, "Terminating")
    if not md.has_status:
        return status_text(WAITING, "Pending")
    return status_text(phase_icon(md.phase), md.phase or "Unknown")


# Argo's header format ("%-17s%v"): a fixed label column keeps redrawn frames from shifting.
LABEL_WIDTH = 17


def header(md: ModelDeploymentView) -> list[str]:
    status = overall_status(md)
    if not md.has_status and not md.deleting:
        status += " (not yet observed by the operator)"
    rows: list[tuple[str, str]] = [
        ("Name:", md.name),
        ("Namespace:", md.namespace),
        ("Status:", status),
    ]
    if md.message:
        rows.append(("Message:", md.message))
    if md.model:
        rows.append(("Model:", f"{md.model} version {md.model_version or '?'} (spec)"))
    if md.generation is not None:
        seen = "" if md.observed_generation is None else f" (observed {md.observed_generation})"
        rows.append(("Generation:", f"{md.generation}{seen}"))
    rows.append(("Strategy:", md.strategy.capitalize()))
    if md.canary is not None:
        c = md.canary
        phase = status_text(CANARY_ICONS.get(c.phase, UNKNOWN), c.phase)
        for label, value in (
            ("Canary:", f"{phase} ({c.reason})" if phase and c.reason else phase),
            ("Step:", step_text(c, md)),
            ("SetWeight:", "" if c.weight is None else str(c.weight)),
            ("ActualWeight:", "" if c.actual_weight is None else str(c.actual_weight)),
        ):
            if value:
                rows.append(("  " + label, value))
    if md.replicas is not None:
        rows.append(
            (
                "Replicas:",
                f"ready {ratio(md.ready_replicas, md.replicas)}, "
                f"model-ready {ratio(md.model_ready_replicas, md.replicas)}",
            )
        )
    for i, (kind, url) in enumerate(md.endpoints):
        rows.append(("Endpoints:" if i == 0 else "", f"{kind} {url}"))
    return [f"{label:<{LABEL_WIDTH}}{value}".rstrip() for label, value in rows]


# --- tree ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One line of the tree: NAME (icon and name), KIND, STATUS, AGE, INFO, and children."""

    name: str
    kind: str = ""
    status: str = ""
    age: str = ""
    info: str = ""
    children: tuple[Node, ...] = ()


def deployment_status(rev: Revision) -> str:
    if rev.replicas is None:
        return status_text(UNKNOWN, "Unknown")
    if rev.replicas == 0:
        return status_text(NEUTRAL, "ScaledDown")
    ready = min(rev.ready_replicas or 0, rev.model_ready_replicas or 0)
    return (
        status_text(OK, "Healthy") if ready >= rev.replicas else status_text(WAITING, "Progressing")
    )


def deployment_node(rev: Revision) -> Node:
    info = [f"model {rev.model_version or '?'}", f"ready {ratio(rev.ready_replicas, rev.replicas)}"]
    if rev.model_ready_replicas is not None:
        info.append(f"model-ready {rev.model_ready_replicas}")
    return Node(
        name=f"{ICON_DEPLOYMENT} {rev.deployment or '?'}",
        kind="Deployment",
        status=deployment_status(rev),
        info=", ".join(info),
    )


def run_node(run: AnalysisRun, now: datetime) -> Node:
    metrics = tuple(
        Node(
            name=m.name or "?",
            kind="Metric",
            status=status_text(VERDICT_ICONS.get(m.verdict, UNKNOWN), m.verdict),
            info=(
                f"{'no data' if m.value is None else number(m.value)}"
                + (f" vs {m.threshold}" if m.threshold else "")
                + (f": {m.message}" if m.message else "")
            ),
        )
        for m in run.metrics
    )
    when = run.time.astimezone(UTC).strftime("%H:%M:%S") if run.time else "?"
    count = "" if run.request_count is None else f"{number(run.request_count)} requests"
    return Node(
        name=f"{ICON_RUN} {when}",
        kind="AnalysisRun",
        status=status_text(VERDICT_ICONS.get(run.verdict, UNKNOWN), run.verdict),
        age=age(run.time, now),
        info=count,
        children=metrics,
    )


def analysis_node(analysis: Analysis, now: datetime, shown: int) -> Node | None:
    a = analysis
    if not a.runs and not (a.successes or a.failures or a.inconclusive):
        return None
    last = a.runs[0].verdict if a.runs else ""
    return Node(
        name=f"{ICON_ANALYSIS} analysis",
        kind="Analysis",
        status=status_text(VERDICT_ICONS.get(last, UNKNOWN), last),
        info=f"{OK} {a.successes}, {BAD} {a.failures}, {UNKNOWN} {a.inconclusive}",
        children=tuple(run_node(r, now) for r in a.runs[:shown]),
    )


def revision_nodes(md: ModelDeploymentView, now: datetime, shown: int) -> list[Node]:
    nodes: list[Node] = []
    c = md.canary
    if c is not None:
        analysis = analysis_node(c.analysis, now, shown)
        info = ", ".join(x for x in ("canary", c.message) if x)
        nodes.append(
            Node(
                name=f"{ICON_REVISION} revision:{c.revision.revision or '?'}",
                status=status_text(CANARY_ICONS.get(c.phase, UNKNOWN), c.phase),
                info=info,
                children=(deployment_node(c.revision), *((analysis,) if analysis else ())),
            )
        )
    if md.stable is not None:
        nodes.append(
            Node(
                name=f"{ICON_REVISION} revision:{md.stable.revision or '?'}",
                info="stable",
                children=(deployment_node(md.stable),),
            )
        )
    return nodes


def flatten(node: Node, prefix: str = "", branch: str = "") -> list[tuple[str, ...]]:
    """Rows with box-drawing prefixes: ``├──`` for a child with siblings after it, ``└──``
    for the last one, ``│`` continuing a parent's line past its own children."""
    rows: list[tuple[str, ...]] = [
        (prefix + branch + node.name, node.kind, node.status, node.age, node.info)
    ]
    # The root's children hang at column 0; deeper ones continue their parent's branch.
    below = prefix + {"": "", "├──": "│  ", "└──": "   "}[branch]
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        rows += flatten(child, below, "└──" if last else "├──")
    return rows


def tree(md: ModelDeploymentView, now: datetime, shown: int) -> list[str]:
    root = Node(
        name=f"{ICON_ROOT} {md.name}",
        kind="ModelDeployment",
        status=overall_status(md),
        age=age(md.created, now),
        children=tuple(revision_nodes(md, now, shown)),
    )
    return table([("NAME", "KIND", "STATUS", "AGE", "INFO"), *flatten(root)])


# --- conditions ------------------------------------------------------------------------------


def conditions(md: ModelDeploymentView, now: datetime) -> list[str]:
    if not md.conditions:
        return []
    rows: list[tuple[str, ...]] = [("CONDITION", "STATUS", "REASON", "AGE", "MESSAGE")]
    for c in md.conditions:
        message = " ".join(c.message.split())
        stale = (
            c.observed_generation is not None
            and md.generation is not None
            and c.observed_generation < md.generation
        )
        if stale:
            message = f"[generation {c.observed_generation}] {message}".rstrip()
        rows.append(
            (f"{condition_icon(c)} {c.type}", c.status, c.reason, age(c.since, now), message)
        )
    return table(rows)


def render(md: Mapping[str, Any], *, now: datetime, analyses: int = ANALYSES_SHOWN) -> list[str]:
    """The lines that draw ``md``.

    Args:
        md: A ModelDeployment as the API server returns it (any fields may be missing).
        now: The time ages are measured against (aware).
        analyses: How many of the canary's most recent analysis runs to draw.
    """
    v = view(md)
    sections = [header(v), tree(v, now, analyses), conditions(v, now)]
    lines: list[str] = []
    for section in filter(None, sections):
        if lines:
            lines.append("")
        lines += section
    return lines
