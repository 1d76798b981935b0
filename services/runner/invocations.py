"""An ExecutionPlan as dbt command lines: which ``dbt build`` runs, in which order, selecting exactly what.

dbt has no ``unique_id:`` selection method, so every executable item is selected by its fully qualified name
and resource type, ``fqn:<package>.<folders>.<name>,resource_type:<type>`` (an intersection), with
``--indirect-selection empty`` so that dbt adds no test the plan did not list. A versioned model's fqn ends
with its version (``p.marts.prices.v2``); dbt's fqn method matches it by its last two segments joined with
``_`` (``prices_v2``), which names that one version. A generic test's fqn is its folder and its name without
the hash suffix of its unique_id. dbt matches fqn selectors by prefix too (``p.marts.orders`` also selects
``p.marts.orders.x`` of a folder ``models/marts/orders/``): every translation is therefore evaluated with
Lockgate's own implementation of dbt's selection (``services.planning.selection``), nodes selected beyond
the plan's are excluded by their own expressions, and a translation that still differs raises
``PlanTranslationError`` (the runner must not start dbt then).

Grouping. Items run in plan order (``(wave, order)``): each wave's RUN items in one ``dbt build``; PARTIAL
items (microbatch models) in builds of their own, one per distinct window, with ``--event-time-start`` and
``--event-time-end``. Between builds of one wave, an item always runs in a build after those of its planned
upstream nodes (followed through nodes the plan does not execute, as dbt does within one build), so a RUN
model downstream of a PARTIAL one waits for it. A plan with only RUN items in one wave is one invocation.

Each invocation writes its artifacts to its own sub-directory of ``target_path`` (``Invocation.target_path``):
one ``run_results.json`` per invocation, none overwritten. dbt logs JSON at debug level (NodeStart and
NodeFinished, with the adapter response, are debug events) without colours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import msgspec

from contracts.graph import LogicalGraph
from contracts.plan import ExecutionPlan, PartitionWindow, PlanItem
from services.planning.selection.engine import ALL_RESOURCE_TYPES, Selector
from services.shared.errors import LockgateError

__all__ = [
    "EXECUTED_ACTIONS",
    "Invocation",
    "PlanTranslationError",
    "item_expression",
    "plan_invocations",
    "selection_args",
]

EXECUTED_ACTIONS: Final = frozenset({"RUN", "PARTIAL"})
"""Item actions that make dbt execute the node (SKIP items are left alone)."""

_EVENT_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"
"""One of the formats ``dbt build --event-time-start`` accepts (dbt 1.11); dbt reads it as UTC."""


class PlanTranslationError(LockgateError):
    """The plan cannot be expressed as dbt selections that select exactly its items (an fqn dbt cannot tell
    apart, an item missing from the graph, a plan whose order puts a node before its upstream)."""

    code = "plan_translation_failed"


class Invocation(msgspec.Struct, frozen=True, kw_only=True):
    """One dbt command: ``argv`` are the arguments after ``dbt``; ``unique_ids`` exactly what it selects."""

    argv: tuple[str, ...]
    unique_ids: frozenset[str]
    wave: int
    window: PartitionWindow | None = None
    target_path: Path
    """Where this invocation's ``run_results.json`` and ``manifest.json`` land."""

    @property
    def run_results(self) -> Path:
        return self.target_path / "run_results.json"


def item_expression(graph: LogicalGraph, unique_id: str) -> str:
    """The dbt selector for one node: ``fqn:<dotted fqn>,resource_type:<type>`` (not checked here)."""
    node = graph.nodes.get(unique_id)
    if node is None:
        raise PlanTranslationError(f"plan item {unique_id!r} is not in the graph", unique_id=unique_id)
    if not node.fqn:
        raise PlanTranslationError(f"node {unique_id!r} has no fqn to select it by", unique_id=unique_id)
    return f"fqn:{'.'.join(node.fqn)},resource_type:{node.resource_type}"


def selection_args(
    graph: LogicalGraph, unique_ids: Iterable[str], *, selector: Selector | None = None
) -> tuple[str, ...]:
    """``--select ... [--exclude ...] --indirect-selection empty`` selecting exactly ``unique_ids``, checked
    with Lockgate's selection engine (pass ``selector`` to reuse an index of ``graph``)."""
    wanted = sorted(set(unique_ids))
    if not wanted:
        raise PlanTranslationError("nothing to select")
    engine = selector if selector is not None else Selector(graph)
    select = [item_expression(graph, uid) for uid in wanted]
    selected = set(_evaluate(engine, select, ()))
    exclude: list[str] = []
    extra = sorted(selected.difference(wanted))
    if extra:
        # fqn prefix matches (a model named like a folder) or versions: exclude the extras by their own fqn
        exclude = [item_expression(graph, uid) for uid in extra]
        selected = set(_evaluate(engine, select, exclude))
    if selected != set(wanted):
        missing, still = sorted(set(wanted) - selected), sorted(selected - set(wanted))
        raise PlanTranslationError(
            "dbt's fqn selection cannot tell these nodes apart: "
            + "; ".join(
                part
                for part in (
                    f"not selected: {', '.join(missing[:5])}" if missing else "",
                    f"selected beyond the plan: {', '.join(still[:5])}" if still else "",
                )
                if part
            ),
            missing=missing,
            unplanned=still,
        )
    args = ["--select", *select]
    if exclude:
        args += ["--exclude", *exclude]
    return (*args, "--indirect-selection", "empty")


def _evaluate(engine: Selector, select: Sequence[str], exclude: Sequence[str]) -> list[str]:
    return engine.select(
        list(select), exclude=list(exclude) or None, indirect_selection="empty", resource_types=ALL_RESOURCE_TYPES
    )


def plan_invocations(
    plan: ExecutionPlan,
    graph: LogicalGraph,
    *,
    threads: int,
    target: str,
    project_dir: Path,
    profiles_dir: Path,
    target_path: Path,
    log_path: Path,
    full_refresh: bool = False,
    profile: str | None = None,
    partial_parse_file: Path | None = None,
    selector: Selector | None = None,
) -> list[Invocation]:
    """The dbt invocations that execute ``plan``'s RUN and PARTIAL items, in the order to run them (see the
    module doc); none when the plan executes nothing. Deterministic: the same plan gives the same argv.

    ``target_path`` is a directory of per-invocation sub-directories; ``profile`` adds ``--profile``;
    ``partial_parse_file``: an existing ``partial_parse.msgpack`` (e.g. of a ``dbt parse`` of the workspace)
    that every invocation reads and updates (dbt's hidden ``--partial-parse-file-path``): dbt keeps it in the
    target path, so without it each invocation parses the project from scratch. ``selector``: an index of
    ``graph`` to reuse. Raises ``PlanTranslationError``."""
    if threads < 1:
        raise PlanTranslationError(f"threads must be at least 1, not {threads}")
    groups = _group(plan, graph)
    engine = selector if selector is not None else (Selector(graph) if groups else None)
    common = [
        "--threads",
        str(threads),
        "--target",
        target,
        *(("--profile", profile) if profile is not None else ()),
        *(("--partial-parse-file-path", str(partial_parse_file)) if partial_parse_file is not None else ()),
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(profiles_dir),
        "--log-path",
        str(log_path),
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]
    invocations: list[Invocation] = []
    for index, group in enumerate(groups):
        assert engine is not None  # noqa: S101 - groups imply an engine
        own_target = target_path / f"{index:03d}-wave{group.wave}{'-partial' if group.window else ''}"
        argv = ["build", *selection_args(graph, group.unique_ids, selector=engine)]
        if group.window is not None:
            argv += ["--event-time-start", _event_time(group.window.start)]
            argv += ["--event-time-end", _event_time(group.window.end)]
        if full_refresh:
            argv.append("--full-refresh")
        argv += ["--target-path", str(own_target), *common]
        invocations.append(
            Invocation(
                argv=tuple(argv),
                unique_ids=frozenset(group.unique_ids),
                wave=group.wave,
                window=group.window,
                target_path=own_target,
            )
        )
    return invocations


def _event_time(moment: datetime) -> str:
    """``--event-time-*`` take no offset and mean UTC: aware datetimes are converted, naive ones are UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(_EVENT_TIME_FORMAT)


class _Group:
    __slots__ = ("unique_ids", "wave", "window")

    def __init__(self, wave: int, window: PartitionWindow | None) -> None:
        self.wave = wave
        self.window = window
        self.unique_ids: list[str] = []


def _group(plan: ExecutionPlan, graph: LogicalGraph) -> list[_Group]:
    """Items into builds: an item joins the first build of its wave and window that comes no earlier than
    its planned upstream (the same build, dbt orders it) or after it (another build); else a new build."""
    items = sorted((i for i in plan.items if i.action in EXECUTED_ACTIONS), key=lambda i: (i.wave, i.order))
    executed = {item.unique_id: item for item in items}
    if len(executed) != len(items):
        raise PlanTranslationError("the plan lists a node twice")
    upstream = _PlannedUpstream(graph, executed)
    groups: list[_Group] = []
    placed: dict[str, int] = {}
    wave_floor, current_wave = 0, None
    for item in items:
        if item.window is None and item.action == "PARTIAL":
            raise PlanTranslationError(f"PARTIAL item {item.unique_id!r} has no window", unique_id=item.unique_id)
        window = item.window if item.action == "PARTIAL" else None
        if item.wave != current_wave:
            wave_floor, current_wave = len(groups), item.wave
        earliest = wave_floor
        for parent in upstream.of(item.unique_id):
            if parent not in placed:
                raise PlanTranslationError(
                    f"the plan runs {item.unique_id!r} before its upstream {parent!r}",
                    unique_id=item.unique_id,
                    upstream=parent,
                )
            at = placed[parent]
            same = groups[at].window == window and groups[at].wave == item.wave
            earliest = max(earliest, at if same else at + 1)
        slot = next(
            (i for i in range(earliest, len(groups)) if groups[i].wave == item.wave and groups[i].window == window),
            None,
        )
        if slot is None:
            groups.append(_Group(item.wave, window))
            slot = len(groups) - 1
        groups[slot].unique_ids.append(item.unique_id)
        placed[item.unique_id] = slot
    return groups


class _PlannedUpstream:
    """The nearest executed ancestors of a node, through nodes the plan does not execute (memoised)."""

    def __init__(self, graph: LogicalGraph, executed: Mapping[str, PlanItem]) -> None:
        self._nodes = graph.nodes
        self._executed = executed
        self._memo: dict[str, frozenset[str]] = {}

    def of(self, unique_id: str) -> frozenset[str]:
        node = self._nodes.get(unique_id)
        if node is None:
            raise PlanTranslationError(f"plan item {unique_id!r} is not in the graph", unique_id=unique_id)
        found: set[str] = set()
        for parent in node.depends_on_nodes:
            if parent in self._executed:
                found.add(parent)
            else:
                found |= self._through(parent)
        return frozenset(found)

    def _through(self, unique_id: str) -> frozenset[str]:
        """Executed ancestors reached through a node that is not executed (post-order, iterative: deep graphs)."""
        memo, nodes, executed = self._memo, self._nodes, self._executed
        stack: list[tuple[str, bool]] = [(unique_id, False)]
        while stack:
            uid, expanded = stack.pop()
            if uid in memo:
                continue
            node = nodes.get(uid)
            parents = node.depends_on_nodes if node is not None else ()
            if not expanded:
                stack.append((uid, True))
                stack.extend((p, False) for p in parents if p not in executed and p not in memo)
                continue
            found: set[str] = set()
            for parent in parents:
                found |= {parent} if parent in executed else memo.get(parent, frozenset())
            memo[uid] = frozenset(found)
        return memo[unique_id]
