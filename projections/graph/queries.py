"""Queries over the graph read model. Every query is scoped to one tenant and one project.

Node rows come back as the stored JSON of ``contracts.graph.GraphNode`` decoded with msgspec, so the API
returns exactly what was ingested (hostile strings included, verbatim).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from contracts.api.graph import GraphVersionView, IngestionView, NodeDiff, NodeStatusView, OutlineNode
from contracts.graph import CatalogEntry, GraphNode, NodeResult, SourceFreshness
from contracts.graph_diff import MODIFYING_ASPECTS

_node = msgspec.json.Decoder(GraphNode)
_catalog = msgspec.json.Decoder(CatalogEntry)
_any = msgspec.json.Decoder()
_result = msgspec.json.Decoder(NodeResult)
_freshness = msgspec.json.Decoder(SourceFreshness)

_AT_VERSION = "valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3)"


class NodeRow(msgspec.Struct, frozen=True, kw_only=True):
    node_uuid: uuid.UUID
    valid_from: int
    valid_to: int | None
    aspects: tuple[str, ...] | None
    node: GraphNode


def _version(row: asyncpg.Record) -> GraphVersionView:
    values = dict(row)
    values["created_at"] = row["created_at"].isoformat()
    return msgspec.convert(values, GraphVersionView)


async def versions(db: asyncpg.Pool, tenant: str, project: str) -> list[GraphVersionView]:
    rows = await db.fetch(
        "SELECT * FROM graph_versions WHERE tenant_id = $1 AND project_id = $2 ORDER BY graph_version DESC",
        tenant,
        project,
    )
    return [_version(row) for row in rows]


async def version(db: asyncpg.Pool, tenant: str, project: str, graph_version: int | None) -> GraphVersionView | None:
    """One version, or the latest when ``graph_version`` is None."""
    if graph_version is None:
        row = await db.fetchrow(
            "SELECT * FROM graph_versions WHERE tenant_id = $1 AND project_id = $2 ORDER BY graph_version DESC LIMIT 1",
            tenant,
            project,
        )
    else:
        row = await db.fetchrow(
            "SELECT * FROM graph_versions WHERE tenant_id = $1 AND project_id = $2 AND graph_version = $3",
            tenant,
            project,
            graph_version,
        )
    return None if row is None else _version(row)


def _node_row(row: asyncpg.Record) -> NodeRow:
    return NodeRow(
        node_uuid=row["node_uuid"],
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        aspects=tuple(row["aspects"]) if row["aspects"] is not None else None,
        node=_node.decode(row["node"]),
    )


async def nodes(
    db: asyncpg.Pool,
    tenant: str,
    project: str,
    graph_version: int,
    *,
    unique_ids: list[str] | None = None,
    resource_type: str | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[NodeRow]:
    """Nodes valid at ``graph_version``, ordered by unique_id (keyset pagination with ``after``)."""
    sql = [f"SELECT node_uuid, valid_from, valid_to, aspects, node::text AS node FROM graph_nodes "
           f"WHERE tenant_id = $1 AND project_id = $2 AND {_AT_VERSION}"]  # fmt: skip
    args: list[Any] = [tenant, project, graph_version]
    if unique_ids is not None:
        args.append(unique_ids)
        sql.append(f"AND unique_id = ANY(${len(args)}::text[])")
    if resource_type is not None:
        args.append(resource_type)
        sql.append(f"AND resource_type = ${len(args)}")
    if after is not None:
        args.append(after)
        sql.append(f"AND unique_id > ${len(args)}")
    sql.append("ORDER BY unique_id")
    if limit is not None:
        args.append(limit)
        sql.append(f"LIMIT ${len(args)}")
    return [_node_row(row) for row in await db.fetch(" ".join(sql), *args)]


async def node_history(db: asyncpg.Pool, tenant: str, project: str, node_uuid: uuid.UUID) -> list[NodeRow]:
    rows = await db.fetch(
        "SELECT node_uuid, valid_from, valid_to, aspects, node::text AS node FROM graph_nodes "
        "WHERE tenant_id = $1 AND project_id = $2 AND node_uuid = $3 ORDER BY valid_from",
        tenant,
        project,
        node_uuid,
    )
    return [_node_row(row) for row in rows]


async def version_siblings(
    db: asyncpg.Pool, tenant: str, project: str, graph_version: int, node: GraphNode
) -> list[str]:
    """Every version of a versioned model (same package and name), itself included; [] if it has none."""
    if node.version is None:
        return []
    rows = await db.fetch(
        "SELECT unique_id FROM graph_nodes "
        f"WHERE tenant_id = $1 AND project_id = $2 AND {_AT_VERSION} AND resource_type = $4 AND name = $5 "
        "AND node->>'package_name' = $6 ORDER BY unique_id",
        tenant,
        project,
        graph_version,
        node.resource_type,
        node.name,
        node.package_name,
    )
    return [row["unique_id"] for row in rows]


async def parents_at(db: asyncpg.Pool, tenant: str, project: str, graph_version: int) -> dict[str, list[str]]:
    """unique_id -> depends_on_nodes of every node at a version: what the graph algorithms need."""
    rows = await db.fetch(
        "SELECT unique_id, coalesce(node->'depends_on_nodes', '[]'::json)::text AS parents FROM graph_nodes "
        f"WHERE tenant_id = $1 AND project_id = $2 AND {_AT_VERSION}",
        tenant,
        project,
        graph_version,
    )
    return {row["unique_id"]: _any.decode(row["parents"]) for row in rows}


class OutlineRow(msgspec.Struct, frozen=True, kw_only=True):
    node: OutlineNode
    parents: list[str]


_strings = msgspec.json.Decoder(list[str])


async def outline(db: asyncpg.Pool, tenant: str, project: str, graph_version: int) -> list[OutlineRow]:
    """Every node at a version with only what a drawing of the graph needs, sorted by unique_id. The fields are
    extracted by PostgreSQL, so the (large) stored node records are neither sent nor decoded here."""
    # json_to_record parses each stored node once; one ``->>`` per field would parse it once per field (6x slower
    # on Spellbook's 19,000 nodes).
    rows = await db.fetch(
        "SELECT g.unique_id, g.node_uuid, g.resource_type, g.name, r.package_name, r.original_file_path AS path, "
        'r.materialized, r.tags::text AS tags, r.access, r."group" AS grp, r.version, '
        "r.depends_on_nodes::text AS parents FROM graph_nodes g, LATERAL json_to_record(g.node) AS r("
        'package_name text, original_file_path text, materialized text, tags json, access text, "group" text, '
        "version text, depends_on_nodes json) "
        f"WHERE g.tenant_id = $1 AND g.project_id = $2 AND {_AT_VERSION} ORDER BY g.unique_id",
        tenant,
        project,
        graph_version,
    )
    return [
        OutlineRow(
            node=OutlineNode(
                unique_id=row["unique_id"],
                node_uuid=row["node_uuid"],
                name=row["name"],
                resource_type=row["resource_type"],
                package_name=row["package_name"] or "",
                path=row["path"] or "",
                materialized=row["materialized"],
                tags=tuple(_strings.decode(row["tags"])) if row["tags"] else (),
                access=row["access"],
                group=row["grp"],
                version=row["version"],
            ),
            parents=_strings.decode(row["parents"]) if row["parents"] else [],
        )
        for row in rows
    ]


async def group_owners(db: asyncpg.Pool, tenant: str, project: str, graph_version: int) -> dict[str, str]:
    """Each dbt group's name -> its owner's name (or email) at a version."""
    raw = await db.fetchval(
        "SELECT groups::text FROM graph_versions WHERE tenant_id = $1 AND project_id = $2 AND graph_version = $3",
        tenant,
        project,
        graph_version,
    )
    owners: dict[str, str] = {}
    for group in _any.decode(raw) if raw else ():
        owner = group.get("owner") or {}
        who = owner.get("name") or owner.get("email")
        if isinstance(who, str) and isinstance(group.get("name"), str):
            owners[group["name"]] = who
    return owners


async def catalog(
    db: asyncpg.Pool, tenant: str, project: str, graph_version: int, unique_ids: list[str]
) -> dict[str, CatalogEntry]:
    rows = await db.fetch(
        "SELECT unique_id, entry::text AS entry FROM graph_catalog "
        f"WHERE tenant_id = $1 AND project_id = $2 AND {_AT_VERSION} AND unique_id = ANY($4::text[])",
        tenant,
        project,
        graph_version,
        unique_ids,
    )
    return {row["unique_id"]: _catalog.decode(row["entry"]) for row in rows}


async def statuses(db: asyncpg.Pool, tenant: str, project: str, unique_ids: list[str]) -> dict[str, NodeStatusView]:
    rows = await db.fetch(
        "SELECT unique_id, status, invocation_id, command, execution_time, completed_at FROM graph_node_status "
        "WHERE tenant_id = $1 AND project_id = $2 AND unique_id = ANY($3::text[])",
        tenant,
        project,
        unique_ids,
    )
    return {row["unique_id"]: msgspec.convert(dict(row), NodeStatusView) for row in rows}


async def ingestions(db: asyncpg.Pool, tenant: str, project: str, *, limit: int = 50) -> list[IngestionView]:
    rows = await db.fetch(
        "SELECT ingestion_id, stream_version, recorded_at, actor, graph_version, new_version, nodes, edges, "
        "artifacts::text AS artifacts, warnings::text AS warnings, unknown_nodes FROM graph_ingestions "
        "WHERE tenant_id = $1 AND project_id = $2 ORDER BY stream_version DESC LIMIT $3",
        tenant,
        project,
        limit,
    )
    out = []
    for row in rows:
        values = dict(row)
        values["recorded_at"] = row["recorded_at"].isoformat()
        values["artifacts"] = _any.decode(row["artifacts"])
        values["warnings"] = _any.decode(row["warnings"])
        out.append(msgspec.convert(values, IngestionView))
    return out


async def artifact_keys(db: asyncpg.Pool, tenant: str, project: str) -> set[str]:
    """Every object-store key this project's ingestions stored: what a download may ask for."""
    rows = await db.fetch(
        "SELECT DISTINCT a->>'key' AS key FROM graph_ingestions, jsonb_array_elements(artifacts) AS a "
        "WHERE tenant_id = $1 AND project_id = $2",
        tenant,
        project,
    )
    return {row["key"] for row in rows}


_MODIFYING = "ARRAY[" + ",".join(f"'{aspect}'" for aspect in sorted(MODIFYING_ASPECTS)) + "]"

_DIFF = f"""
WITH a AS (
    SELECT node_uuid, unique_id FROM graph_nodes
    WHERE tenant_id = $1 AND project_id = $2 AND valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3)
), b AS (
    SELECT node_uuid, unique_id, resource_type, valid_from FROM graph_nodes
    WHERE tenant_id = $1 AND project_id = $2 AND valid_from <= $4 AND (valid_to IS NULL OR valid_to > $4)
), between_versions AS (
    SELECT node_uuid, array_agg(DISTINCT aspect ORDER BY aspect) AS aspects FROM graph_nodes, unnest(aspects) AS aspect
    WHERE tenant_id = $1 AND project_id = $2 AND valid_from > $3 AND valid_from <= $4
    GROUP BY node_uuid
)
SELECT CASE WHEN a.node_uuid IS NULL THEN 'added'
            WHEN b.node_uuid IS NULL THEN 'removed'
            WHEN a.unique_id <> b.unique_id THEN 'renamed'
            ELSE 'changed' END AS kind,
       coalesce(b.node_uuid, a.node_uuid) AS node_uuid,
       coalesce(b.unique_id, a.unique_id) AS unique_id,
       CASE WHEN a.unique_id <> b.unique_id THEN a.unique_id END AS old_unique_id,
       coalesce(b.resource_type, r.resource_type) AS resource_type,
       coalesce(w.aspects, ARRAY[]::text[]) AS aspects,
       coalesce(w.aspects && {_MODIFYING}, false) AS modified
FROM a FULL JOIN b ON a.node_uuid = b.node_uuid
LEFT JOIN between_versions w ON w.node_uuid = coalesce(b.node_uuid, a.node_uuid)
LEFT JOIN LATERAL (
    SELECT resource_type FROM graph_nodes g
    WHERE g.tenant_id = $1 AND g.project_id = $2 AND g.node_uuid = a.node_uuid LIMIT 1
) r ON b.node_uuid IS NULL
WHERE a.node_uuid IS NULL OR b.node_uuid IS NULL OR a.unique_id <> b.unique_id
   OR b.valid_from > $3
ORDER BY 3
"""


async def diff(db: asyncpg.Pool, tenant: str, project: str, from_version: int, to_version: int) -> list[NodeDiff]:
    """Nodes added, removed, renamed or changed between two versions (``from_version`` 0 = everything added).
    ``aspects`` unions what changed in every version after ``from_version`` up to ``to_version``."""
    rows = await db.fetch(_DIFF, tenant, project, from_version, to_version)
    return [
        NodeDiff(
            kind=row["kind"],
            node_uuid=row["node_uuid"],
            unique_id=row["unique_id"],
            old_unique_id=row["old_unique_id"],
            resource_type=row["resource_type"],
            aspects=tuple(a for a in row["aspects"] if a != "renamed"),
            modified=row["modified"],
        )
        for row in rows
    ]


async def history(
    db: asyncpg.Pool, tenant: str, project: str, unique_ids: list[str], *, per_node: int = 20
) -> dict[str, list[NodeResult]]:
    """The most recent recorded results of each node (newest first), for cost estimates and policies.
    ``docs generate`` results are left out: they say nothing about how long a node takes to build."""
    rows = await db.fetch(
        "SELECT unique_id, result::text AS result FROM ("
        "  SELECT unique_id, result, row_number() OVER (PARTITION BY unique_id ORDER BY recorded_at DESC,"
        "         completed_at DESC NULLS LAST) AS n"
        "  FROM graph_run_results WHERE tenant_id = $1 AND project_id = $2 AND unique_id = ANY($3::text[])"
        "  AND coalesce(command, '') <> 'generate'"
        ") recent WHERE n <= $4 ORDER BY unique_id, n",
        tenant,
        project,
        unique_ids,
        per_node,
    )
    out: dict[str, list[NodeResult]] = {}
    for row in rows:
        out.setdefault(row["unique_id"], []).append(_result.decode(row["result"]))
    return out


async def last_statuses(db: asyncpg.Pool, tenant: str, project: str) -> dict[str, str]:
    """unique_id -> status of its last recorded execution: what ``result:<status>`` selects on."""
    rows = await db.fetch(
        "SELECT unique_id, status FROM graph_node_status WHERE tenant_id = $1 AND project_id = $2", tenant, project
    )
    return {row["unique_id"]: row["status"] for row in rows}


async def freshness(db: asyncpg.Pool, tenant: str, project: str) -> dict[str, SourceFreshness]:
    rows = await db.fetch(
        "SELECT unique_id, result::text AS result FROM graph_source_freshness WHERE tenant_id = $1 AND project_id = $2",
        tenant,
        project,
    )
    return {row["unique_id"]: _freshness.decode(row["result"]) for row in rows}


class ProjectGraphHealth(msgspec.Struct, frozen=True, kw_only=True):
    graph_version: int
    nodes: int
    edges: int
    dbt_version: str | None
    ingested_at: datetime | None
    node_statuses: dict[str, int]
    source_freshness: dict[str, int]
    freshness_checked_at: str | None


async def health(db: asyncpg.Pool, tenant: str) -> dict[str, ProjectGraphHealth]:
    """project_id -> its latest graph version's size, last ingestion, node statuses and source freshness."""
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        latest = await conn.fetch(
            "SELECT DISTINCT ON (project_id) project_id, graph_version, nodes, edges, dbt_version FROM graph_versions "
            "WHERE tenant_id = $1 ORDER BY project_id, graph_version DESC",
            tenant,
        )
        ingested = await conn.fetch(
            "SELECT project_id, max(recorded_at) AS at FROM graph_ingestions WHERE tenant_id = $1 GROUP BY project_id",
            tenant,
        )
        statuses = await conn.fetch(
            "SELECT project_id, status, count(*) AS n FROM graph_node_status WHERE tenant_id = $1 GROUP BY 1, 2",
            tenant,
        )
        freshness = await conn.fetch(
            "SELECT project_id, status, count(*) AS n, max(snapshotted_at) AS at FROM graph_source_freshness "
            "WHERE tenant_id = $1 GROUP BY 1, 2",
            tenant,
        )
    at = {row["project_id"]: row["at"] for row in ingested}
    counts: dict[str, dict[str, int]] = {}
    for row in statuses:
        counts.setdefault(row["project_id"], {})[row["status"]] = row["n"]
    fresh: dict[str, dict[str, int]] = {}
    checked: dict[str, str] = {}
    for row in freshness:
        fresh.setdefault(row["project_id"], {})[row["status"]] = row["n"]
        if row["at"] is not None:
            checked[row["project_id"]] = max(checked.get(row["project_id"], ""), row["at"])
    return {
        row["project_id"]: ProjectGraphHealth(
            graph_version=row["graph_version"],
            nodes=row["nodes"],
            edges=row["edges"],
            dbt_version=row["dbt_version"],
            ingested_at=at.get(row["project_id"]),
            node_statuses=counts.get(row["project_id"], {}),
            source_freshness=fresh.get(row["project_id"], {}),
            freshness_checked_at=checked.get(row["project_id"]),
        )
        for row in latest
    }
