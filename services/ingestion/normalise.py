"""A decoded manifest (any schema version) becomes a ``LogicalGraph`` plus the code kept beside it.

What is normalised, and why:

- every section with selectable resources is merged into ``graph.nodes``; a unique_id may appear only
  once across them (dbt guarantees it; a duplicate would make one node silently replace another);
- ``checksum`` becomes ``<name>:<hex>``, empty when dbt says ``none`` (generic tests); a unit test's bare
  string checksum is dbt's sha256, so it becomes ``sha256:<hex>``;
- ``body_hash`` is the sha256 of ``raw_code``'s text (``raw_sql`` before v7), decoded from JSON first so
  that two writers escaping the same code differently still agree;
- ``depends_on.nodes`` is deduplicated in order; a test without dbt's ``attached_node`` is attached to its
  only parent, when it has exactly one (unit tests too: their one parent is the model under test);
- metrics of v9 and earlier are dropped, as dbt's own upgrader does (``upgrade_manifest.py``): their shape
  was replaced wholesale in v10 and no later capability reads them;
- a dependency on a node that is absent is accepted with a warning when the node is disabled (dbt 1.0 wrote
  such manifests: a test of a disabled model, ``versions/manifest_v4``) or is a dropped pre-v10 metric, and
  refused otherwise: none of the 28 manifests of the corpus has one.

The code (``raw_code`` and ``compiled_code`` of every resource that has any) is returned as one JSON object
``{unique_id: {"raw_code": ..., "compiled_code": ...}}`` assembled from the JSON slices msgspec kept as
``Raw``: the code is most of a build manifest and is never built into Python strings beyond the one
``raw_code`` decode the hash needs (``compiled_code`` is decoded once only to prove it is a UTF-8 string).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec

from contracts.dbt.manifest import RESOURCE_SECTIONS, FileHash, Macro, Manifest, Resource
from contracts.graph import ArtifactInfo, GraphNode, Group, LogicalGraph
from contracts.graph import Macro as GraphMacro
from services.ingestion.checks import MAX_UNIQUE_ID, too_deep
from services.shared.errors import ArtifactError

FIRST_NEW_METRICS = 10
"""The manifest version whose metrics survive dbt's upgrader (semantic-layer metrics, dbt 1.6)."""

_text: msgspec.json.Decoder[str | None] = msgspec.json.Decoder(str | None)
_key = msgspec.json.Encoder()


class Normalised(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    graph: LogicalGraph
    code: bytes
    warnings: tuple[str, ...]


def normalise(manifest: Manifest, info: ArtifactInfo) -> Normalised:
    """The graph of ``manifest``; raises ``ArtifactError`` for what the graph cannot keep (module docstring)."""
    warnings: list[str] = []
    keep_metrics = info.schema_version >= FIRST_NEW_METRICS
    nodes: dict[str, GraphNode] = {}
    code = _CodeWriter()
    for section in RESOURCE_SECTIONS:
        resources: dict[str, Resource] = getattr(manifest, section)
        if section == "metrics" and not keep_metrics:
            if resources:
                warnings.append(_dropped_metrics(len(resources), info.schema_version))
            continue
        for key, resource in resources.items():
            uid = _checked_id(key, resource.unique_id, section)
            if uid in nodes:
                raise _duplicate(manifest, uid)
            nodes[uid] = _node(resource)
            code.add(uid, resource)
    disabled = _disabled(manifest.disabled, keep_metrics=keep_metrics)
    warnings += _dangling(nodes, disabled, keep_metrics=keep_metrics)
    macros = {_checked_id(key, m.unique_id, "macros"): _macro(m) for key, m in manifest.macros.items()}
    groups = {
        _checked_id(key, g.unique_id, "groups"): Group(
            unique_id=g.unique_id, name=g.name, package_name=g.package_name, owner=_meta(g.owner, g.unique_id)
        )
        for key, g in manifest.groups.items()
    }
    for name, selector in manifest.selectors.items():
        _meta(selector, f"selector {name}")
    graph = LogicalGraph(
        info=info, nodes=nodes, macros=macros, groups=groups, disabled=disabled, selectors=manifest.selectors
    )
    return Normalised(graph=graph, code=code.finish(), warnings=tuple(warnings))


def _node(r: Resource) -> GraphNode:
    uid = r.unique_id
    deps = r.depends_on
    parents: tuple[str, ...] = ()
    macros: tuple[str, ...] = ()
    if deps is not None:
        parents = tuple(dict.fromkeys(deps.nodes)) if len(deps.nodes) > 1 else deps.nodes
        macros = deps.macros
    attached = r.attached_node
    if attached is None and len(parents) == 1 and r.resource_type in ("test", "unit_test"):
        attached = parents[0]
    raw = _code_text(r.raw_code or r.raw_sql, uid, "raw_code")
    _check_nesting(r)
    materialized = r.config.get("materialized")
    return GraphNode(
        unique_id=uid,
        resource_type=r.resource_type,
        name=r.name,
        package_name=r.package_name,
        original_file_path=r.original_file_path,
        path=r.path,
        patch_path=r.patch_path,
        fqn=r.fqn,
        database=r.database,
        schema_name=r.schema_name,
        alias=r.identifier if r.resource_type == "source" else r.alias,
        relation_name=r.relation_name,
        checksum=_checksum(r.checksum),
        body_hash=hashlib.sha256(raw.encode()).hexdigest() if raw else "",
        language=r.language,
        materialized=materialized if type(materialized) is str else None,
        description=r.description or "",
        tags=r.tags,
        meta=r.meta,
        config=r.config,
        unrendered_config=r.unrendered_config,
        columns=tuple(r.columns.values()),
        depends_on_nodes=parents,
        depends_on_macros=macros,
        contract=r.contract,
        access=r.access,
        group=r.group,
        version=_version(r.version),
        latest_version=_version(r.latest_version),
        deprecation_date=r.deprecation_date,
        test_metadata=r.test_metadata,
        attached_node=attached,
        column_name=r.column_name,
        source_name=r.source_name,
        extra=_extra(r),
    )


def _checksum(checksum: FileHash | str | None) -> str:
    if checksum is None:
        return ""
    if isinstance(checksum, str):
        return f"sha256:{checksum}" if checksum else ""
    return "" if checksum.name == "none" else f"{checksum.name}:{checksum.checksum}"


def _version(value: str | float | None) -> str | None:
    return value if value is None or type(value) is str else str(value)


def _extra(r: Resource) -> dict[str, Any]:
    """The per-type attributes that dbt's state comparison reads and ``GraphNode`` has no field for."""
    if r.resource_type == "source":
        fields: dict[str, Any] = {
            "quoting": r.quoting,
            "freshness": r.freshness,
            "loaded_at_field": r.loaded_at_field,
            "external": r.external,
        }
    elif r.resource_type == "exposure":
        fields = {"type": r.type, "maturity": r.maturity, "owner": r.owner, "url": r.url, "label": r.label}
    elif r.resource_type == "semantic_model":
        fields = {"model": r.model}
    else:
        return {}
    return _meta({k: v for k, v in fields.items() if v is not None}, r.unique_id)


def _check_nesting(r: Resource) -> None:
    uid = r.unique_id
    _meta(r.meta, uid)
    _meta(r.config, uid)
    _meta(r.unrendered_config, uid)
    for column in r.columns.values():
        _meta(column.meta, uid)
    if r.test_metadata is not None:
        _meta(r.test_metadata.kwargs, uid)


def _meta(value: dict[str, Any], owner: str) -> dict[str, Any]:
    """``value`` unchanged, after refusing nesting deeper than ``MAX_DEPTH`` (see ``checks``)."""
    if value and too_deep(value):
        raise ArtifactError(f"manifest: {owner} nests YAML (meta/config) deeper than 64 levels", artifact="manifest")
    return value


def _code_text(raw: msgspec.Raw, uid: str, field: str) -> str | None:
    if not raw:
        return None
    try:
        return _text.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"manifest: {field} of {uid} is not a UTF-8 string: {exc}", artifact="manifest") from exc


def _checked_id(key: str, uid: str, section: str) -> str:
    if len(uid) > MAX_UNIQUE_ID:
        raise ArtifactError(
            f"manifest: a unique_id in {section} is {len(uid)} characters long "
            f"(limit {MAX_UNIQUE_ID}): {uid[:80]!r}...",
            artifact="manifest",
        )
    if key != uid:
        raise ArtifactError(f"manifest: {section} key {key!r} holds unique_id {uid!r}", artifact="manifest")
    return uid


def _duplicate(manifest: Manifest, uid: str) -> ArtifactError:
    sections = [s for s in RESOURCE_SECTIONS if uid in getattr(manifest, s)]
    return ArtifactError(f"manifest: unique_id {uid!r} appears in {' and '.join(sections)}", artifact="manifest")


def _dropped_metrics(count: int, version: int) -> str:
    return (
        f"manifest v{version}: {count} metric(s) dropped: dbt replaced metrics in v{FIRST_NEW_METRICS} "
        "and its upgrader drops older ones"
    )


def _disabled(
    disabled: dict[str, list[Resource]] | list[Resource] | None, *, keep_metrics: bool
) -> dict[str, tuple[GraphNode, ...]]:
    """``{unique_id: (node, ...)}``; v1-v3 wrote a flat list, grouped here by unique_id in file order."""
    if not disabled:
        return {}
    groups: dict[str, list[Resource]] = {}
    entries: Iterable[tuple[str, list[Resource]]] = (
        disabled.items() if isinstance(disabled, dict) else ((r.unique_id, [r]) for r in disabled)
    )
    for key, resources in entries:
        for r in resources:
            if keep_metrics or r.resource_type != "metric":
                groups.setdefault(_checked_id(key, r.unique_id, "disabled"), []).append(r)
    return {uid: tuple(_node(r) for r in rs) for uid, rs in groups.items()}


def _dangling(
    nodes: dict[str, GraphNode], disabled: dict[str, tuple[GraphNode, ...]], *, keep_metrics: bool
) -> list[str]:
    warnings = []
    for node in nodes.values():
        for parent in node.depends_on_nodes:
            if parent in nodes:
                continue
            if parent in disabled:
                warnings.append(f"{node.unique_id} depends on {parent}, which is disabled")
            elif not keep_metrics and parent.startswith("metric."):
                warnings.append(f"{node.unique_id} depends on {parent}, a dropped pre-v10 metric")
            else:
                raise ArtifactError(
                    f"manifest: {node.unique_id} depends on {parent}, which is not in the manifest",
                    artifact="manifest",
                )
    return warnings


def _macro(m: Macro) -> GraphMacro:
    sql = _code_text(m.macro_sql, m.unique_id, "macro_sql") or ""
    return GraphMacro(
        unique_id=m.unique_id,
        name=m.name,
        package_name=m.package_name,
        original_file_path=m.original_file_path,
        sql_hash=hashlib.sha256(sql.encode()).hexdigest(),
        depends_on_macros=m.depends_on.macros if m.depends_on is not None else (),
    )


class _CodeWriter:
    """Assembles the code object from ``Raw`` slices (JSON string tokens, copied as they are)."""

    def __init__(self) -> None:
        self._parts: list[bytes | msgspec.Raw] = [b"{"]

    def add(self, uid: str, r: Resource) -> None:
        raw = r.raw_code or r.raw_sql
        compiled = r.compiled_code or r.compiled_sql
        has_raw = bool(raw) and raw != _NULL
        has_compiled = bool(compiled) and compiled != _NULL
        if not (has_raw or has_compiled):
            return
        parts = self._parts
        if len(parts) > 1:
            parts.append(b",")
        parts += (_key.encode(uid), b":{")
        if has_raw:
            parts += (b'"raw_code":', raw)
        if has_compiled:
            _code_text(compiled, uid, "compiled_code")
            parts += (b',"compiled_code":' if has_raw else b'"compiled_code":', compiled)
        parts.append(b"}")

    def finish(self) -> bytes:
        self._parts.append(b"}")
        return b"".join(self._parts)


_NULL = msgspec.Raw(b"null")
