"""``run_results.json`` v1..v6 (dbt 0.19 to 1.12): what each executed node did in one invocation.

The versions differ in keys Lockgate does not read (``compiled_code`` v5+, ``batch_results`` v6,
``overload_results`` 1.12) or only add optional ones (``failures`` v2+, ``relation_name`` v5+), so one
Struct family serves all of them. Statuses are an open set (``no-op`` 1.10, ``reused`` 1.12).
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.dbt.metadata import Metadata


class TimingInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    name: str
    started_at: str | None = None
    completed_at: str | None = None


class RunResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    unique_id: str
    status: str
    execution_time: float = 0.0
    timing: tuple[TimingInfo, ...] = ()
    thread_id: str | None = None
    message: str | None = None
    failures: int | None = None
    adapter_response: dict[str, Any] = {}
    relation_name: str | None = None


class RunResultsArtifact(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    metadata: Metadata
    results: tuple[RunResult, ...] = ()
    elapsed_time: float = 0.0
    args: dict[str, Any] = {}
    """The invocation's flags; ``which`` names the command (``build``, ``run``, ``generate``...)."""
