"""Request and response bodies of the planning and run routes (``/api/tenants/{t}/projects/{p}/runs|plans``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from contracts.ids import SLUG_PATTERN

Expression = Annotated[str, msgspec.Meta(max_length=4000, description="dbt selection syntax.")]
Comment = Annotated[str, msgspec.Meta(max_length=2000)]
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=SLUG_PATTERN)]


class RunRequestBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to run: a selection (dbt syntax) in an environment (the project is in the path)."""

    environment_id: Slug
    select: Expression | None = None
    exclude: Expression | None = None
    selector: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    state_reference: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """The graph version ``state:`` selectors compare with."""
    full_refresh: bool = False


class RunRequest(RunRequestBody, frozen=True, kw_only=True):
    project_id: Slug


class DecisionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    plan_id: uuid.UUID | None = None
    """The plan being decided on (default: the run's current plan); a stale id is refused."""
    comment: Comment = ""


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Comment = ""


class SelectionView(msgspec.Struct, frozen=True, kw_only=True):
    graph_version: int
    unique_ids: list[str]


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    run_id: uuid.UUID
    project_id: str
    environment_id: str
    status: str
    requested_by: str
    requested_at: datetime
    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    state_reference: int | None = None
    full_refresh: bool = False
    plan_id: uuid.UUID | None = None
    plan_hash: str | None = None
    graph_version: int | None = None
    totals: Any = None
    approvals: Any = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    version: int


class RunDetail(msgspec.Struct, frozen=True, kw_only=True):
    run: RunView
    plan: Any = None
    explain: Any = None


class RunList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[RunView]
    next_before: str | None = None
