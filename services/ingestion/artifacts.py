"""The entry points of ingestion's first step: dbt artifact bytes in, Lockgate's contracts out.

Each reader decodes one artifact kind with the lenient Structs of ``contracts.dbt`` (one pass), checks its
``metadata.dbt_schema_version`` (``decoding.schema_version``) and converts it into ``contracts.graph``.
Every refusal is an ``ArtifactError`` naming the artifact and the offender; everything dbt would accept
but Lockgate finds odd is returned as a warning instead. Whether catalog, run results or freshness results
name nodes the manifest has is not checked here: the ingestion handler, which holds both, flags that.
"""

from __future__ import annotations

import msgspec

from contracts.dbt.catalog import Catalog, CatalogTable
from contracts.dbt.manifest import Manifest
from contracts.dbt.run_results import RunResult, RunResultsArtifact
from contracts.dbt.sources import SourcesArtifact
from contracts.graph import (
    ArtifactInfo,
    CatalogEntry,
    FreshnessResults,
    LogicalGraph,
    NodeResult,
    RunResults,
    SourceFreshness,
)
from services.ingestion.checks import may_hold_nul, nul_holder
from services.ingestion.decoding import Buffer, artifact_info, decode, schema_version
from services.ingestion.normalise import normalise
from services.shared.errors import ArtifactError

_manifest = msgspec.json.Decoder(Manifest)
_catalog = msgspec.json.Decoder(Catalog)
_run_results = msgspec.json.Decoder(RunResultsArtifact)
_sources = msgspec.json.Decoder(SourcesArtifact)


class ParsedManifest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    graph: LogicalGraph
    code: bytes
    """JSON ``{unique_id: {"raw_code": ..., "compiled_code": ...}}`` (decodes as ``dict[str, CodeRecord]``),
    for every resource that has code; stored next to the artifact, out of the hot model."""
    warnings: tuple[str, ...] = ()


class ParsedCatalog(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    info: ArtifactInfo
    entries: dict[str, CatalogEntry]
    """The catalog's nodes and sources, keyed by unique_id (the two sections never share one)."""
    warnings: tuple[str, ...] = ()


class ParsedRunResults(RunResults, frozen=True, kw_only=True, gc=False):
    """``RunResults`` plus what reading them earned."""

    warnings: tuple[str, ...] = ()


class ParsedFreshness(FreshnessResults, frozen=True, kw_only=True, gc=False):
    """``FreshnessResults`` plus what reading them earned."""

    warnings: tuple[str, ...] = ()


def read_manifest(data: Buffer) -> ParsedManifest:
    """A ``manifest.json`` of schema v1..v12 (later versions read as v12, with a warning)."""
    manifest = decode(data, _manifest, "manifest")
    version, warnings = schema_version("manifest", manifest.metadata)
    normalised = normalise(manifest, artifact_info("manifest", manifest.metadata, version))
    del manifest  # its Raw code slices point into ``data``; the code now lives in ``normalised.code``
    if may_hold_nul(data):
        holder = nul_holder(normalised.graph)
        if holder is not None:
            raise ArtifactError(
                f"manifest: {holder} has a NUL character (\\u0000), which PostgreSQL cannot store",
                artifact="manifest",
            )
    return ParsedManifest(graph=normalised.graph, code=normalised.code, warnings=warnings + normalised.warnings)


def read_catalog(data: Buffer) -> ParsedCatalog:
    """A ``catalog.json`` (v1): the warehouse's view of every relation ``docs generate`` could read."""
    catalog = decode(data, _catalog, "catalog")
    version, warnings = schema_version("catalog", catalog.metadata)
    entries = {uid: _catalog_entry(uid, table) for uid, table in catalog.nodes.items()}
    entries.update((uid, _catalog_entry(uid, table)) for uid, table in catalog.sources.items())
    errors = tuple(f"catalog: dbt reported: {error}" for error in catalog.errors or ())
    return ParsedCatalog(
        info=artifact_info("catalog", catalog.metadata, version), entries=entries, warnings=warnings + errors
    )


def _catalog_entry(uid: str, table: CatalogTable) -> CatalogEntry:
    meta = table.metadata
    return CatalogEntry(
        unique_id=uid,
        relation_type=meta.type,
        database=meta.database,
        schema_name=meta.schema_name,
        name=meta.name,
        comment=meta.comment,
        owner=meta.owner,
        columns=tuple(table.columns.values()),
        stats=table.stats,
    )


def read_run_results(data: Buffer) -> ParsedRunResults:
    """A ``run_results.json`` of schema v1..v6; ``info.command`` is ``args.which`` (``build``, ``generate``...)."""
    artifact = decode(data, _run_results, "run-results")
    version, warnings = schema_version("run-results", artifact.metadata)
    which = artifact.args.get("which")
    info = artifact_info("run-results", artifact.metadata, version, which if isinstance(which, str) else None)
    return ParsedRunResults(
        info=info,
        elapsed_time=artifact.elapsed_time,
        results=tuple(_node_result(r) for r in artifact.results),
        warnings=warnings,
    )


def _node_result(r: RunResult) -> NodeResult:
    """``started_at``/``completed_at`` span dbt's timing steps (compile, execute); the query ids are what the
    adapter reports (Snowflake ``query_id``, BigQuery ``job_id``)."""
    response = r.adapter_response
    rows = response.get("rows_affected")
    query_ids = tuple(v for k in ("query_id", "job_id") if isinstance(v := response.get(k), str))
    return NodeResult(
        unique_id=r.unique_id,
        status=r.status,
        execution_time=r.execution_time,
        started_at=r.timing[0].started_at if r.timing else None,
        completed_at=r.timing[-1].completed_at if r.timing else None,
        thread_id=r.thread_id,
        message=r.message,
        failures=r.failures,
        rows_affected=rows if isinstance(rows, int) else None,
        query_ids=query_ids,
        adapter_response=response,
        relation_name=r.relation_name,
    )


def read_sources(data: Buffer) -> ParsedFreshness:
    """A ``sources.json`` (``dbt source freshness``) of schema v1..v3."""
    artifact = decode(data, _sources, "sources")
    version, warnings = schema_version("sources", artifact.metadata)
    results = tuple(
        SourceFreshness(
            unique_id=r.unique_id,
            status=r.status,
            max_loaded_at=r.max_loaded_at,
            snapshotted_at=r.snapshotted_at,
            max_loaded_at_time_ago_in_s=r.max_loaded_at_time_ago_in_s,
            criteria=r.criteria,
            error=r.error,
        )
        for r in artifact.results
    )
    return ParsedFreshness(
        info=artifact_info("sources", artifact.metadata, version),
        elapsed_time=artifact.elapsed_time,
        results=results,
        warnings=warnings,
    )
