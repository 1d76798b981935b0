"""Plan fidelity and how a run ends: what dbt executed (``run_results.json``) against the plan, and the run's
final status from the nodes' statuses, dbt's exit status and that comparison.

A node counts as executed when dbt reports it in ``run_results.json``, whatever its status: a node skipped
because its upstream failed was still part of the invocation (dbt reports it ``skipped``). Any difference
between that set and the plan's RUN/PARTIAL items fails the run (``plan_mismatch``), even when every node
succeeded: Lockgate promised to execute exactly the approved plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from contracts.events.runs import FailureReason, FinalStatus, PlanDeviation
from contracts.plan import ExecutionPlan
from services.ingestion.artifacts import read_run_results
from services.runner.invocations import EXECUTED_ACTIONS

__all__ = ["OK_STATUSES", "WARN_STATUSES", "compare", "executed_from_run_results", "outcome"]

OK_STATUSES: Final = frozenset({"success", "pass", "no-op", "reused"})
"""dbt statuses of a node that did what it should (``reused``: dbt 1.12 reused another environment's)."""
WARN_STATUSES: Final = frozenset({"warn"})
"""A warn-severity test found rows: the run ends ``warning``. Every other status is a failure (``error``,
``fail``, ``skipped``, ``partial success``, ``runtime error``, anything new)."""
DBT_ERROR_EXIT: Final = 2
"""dbt's exit status when it could not run at all (a parse error, a bad profile, a bad flag)."""
_NAMED: Final = 3
"""How many failing nodes a message names."""


def executed_from_run_results(paths: Sequence[Path]) -> dict[str, str]:
    """unique_id -> dbt status over the ``run_results.json`` files of a run's invocations, in order (a later
    one wins). A path that does not exist is skipped: an invocation that dbt could not start writes none,
    and its nodes then show up as missing. Raises ``ArtifactError`` for a file that is not run results."""
    executed: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            continue
        for result in read_run_results(path.read_bytes()).results:
            executed[result.unique_id] = result.status
    return executed


def compare(plan: ExecutionPlan, executed: Mapping[str, str]) -> PlanDeviation:
    """``unplanned``: reported but not a RUN/PARTIAL item; ``missing``: a RUN/PARTIAL item never reported."""
    planned = {item.unique_id for item in plan.items if item.action in EXECUTED_ACTIONS}
    return PlanDeviation(
        unplanned=tuple(sorted(set(executed) - planned)),
        missing=tuple(sorted(planned - set(executed))),
    )


def outcome(
    statuses: Mapping[str, str], *, exit_code: int, deviation: PlanDeviation
) -> tuple[FinalStatus, FailureReason, str]:
    """How a run that dbt finished ends: ``(status, reason, message)``.

    In order: ``dbt_error`` when dbt could not run (exit status 2, or a non-zero exit and no result at all);
    ``node_failed`` when a node's status is neither OK nor warn (the message names the first ones, in
    ``statuses`` order, and mentions any deviation: a runner that stops after a failing invocation leaves
    the later invocations' items missing, a consequence of the failure); ``plan_mismatch`` for any deviation;
    ``dbt_error`` again for a non-zero exit with every node fine (a failing ``on-run-end`` hook...); else
    ``warning`` if a test warned, else ``success``. ``exit_code``: the first non-zero exit status of the
    run's invocations, else 0. Timeouts, memory kills and cancels are the caller's to decide first."""
    failed = [(uid, status) for uid, status in statuses.items() if status not in OK_STATUSES | WARN_STATUSES]
    deviated = bool(deviation.unplanned or deviation.missing)
    if exit_code == DBT_ERROR_EXIT or (exit_code != 0 and not statuses):
        return "failed", "dbt_error", f"dbt could not run (exit status {exit_code})"
    if failed:
        message = _failures_message(failed)
        if deviated:
            message += f"; plan deviation: {_deviation_message(deviation)}"
        return "failed", "node_failed", message
    if deviated:
        return "failed", "plan_mismatch", _deviation_message(deviation)
    if exit_code != 0:
        return "failed", "dbt_error", f"dbt exited with status {exit_code} although every node succeeded"
    warned = [uid for uid, status in statuses.items() if status in WARN_STATUSES]
    if warned:
        return "warning", "", f"{_count(len(warned), 'test')} warned: {_names(warned)}"
    return "success", "", f"{_count(len(statuses), 'node')} succeeded"


def _failures_message(failed: Sequence[tuple[str, str]]) -> str:
    """Failures first (a skip is the consequence of one), then skips."""
    broken = [(uid, status) for uid, status in failed if status != "skipped"]
    skipped = len(failed) - len(broken)
    shown = broken or list(failed)
    names = _names([f"{uid} ({status})" for uid, status in shown])
    message = f"{_count(len(shown), 'node')} {'failed' if broken else 'skipped'}: {names}"
    if broken and skipped:
        message += f"; {skipped} skipped"
    return message


def _deviation_message(deviation: PlanDeviation) -> str:
    parts = []
    if deviation.unplanned:
        parts.append(
            f"dbt executed {_count(len(deviation.unplanned), 'node')} not in the plan: {_names(deviation.unplanned)}"
        )
    if deviation.missing:
        parts.append(
            f"dbt never reported {_count(len(deviation.missing), 'planned node')}: {_names(deviation.missing)}"
        )
    return "; ".join(parts)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMED])
    return shown if len(names) <= _NAMED else f"{shown} and {len(names) - _NAMED} more"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
