"""Every artifact of the real corpus ingests, and what comes out agrees with the same file read by
``json.loads``: counts per section, edges, statuses, and the per-node normalisation rules."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import msgspec
import pytest

from contracts.graph import CodeRecord, GraphNode
from services.ingestion.artifacts import read_catalog, read_manifest, read_run_results, read_sources
from tests.corpus import corpus_bytes

MANIFESTS = [
    *(
        f"versions/manifest_{name}.json"
        for name in (
            "v1_dbt-0.19.1",
            "v2_dbt-0.20.2",
            "v3_dbt-0.21.0",
            "v4_dbt-1.0.0",
            "v5_dbt-1.1.0",
            "v6_dbt-1.2.1",
            "v7_dbt-1.3.0",
            "v8_dbt-1.4.1",
            "v8_dbt-1.4.3",
            "v9_dbt-1.5.0rc1",
            "v10_dbt-1.6.0",
            "v11_dbt-1.7.0",
            "v12_dbt-1.8.9",
            "v12_dbt-1.9.0",
            "v12_dbt-1.10.13",
            "v12_dbt-1.11.7",
            "v12_dbt-1.12.0",
        )
    ),
    "jaffle_shop_duckdb/manifest.json",
    "jaffle_shop_duckdb/failing_test/manifest.json",
    "jaffle_shop_duckdb/state_modified/manifest.base.json",
    "jaffle_shop_duckdb/state_modified/manifest.edited.json",
    "tuva/manifest.json",
    "tuva/build/manifest.json",
    "tuva/state_modified/manifest.edited.json.gz",
    "gitlab_snowflake/manifest.json",
    "gitlab_snowflake/state_modified/manifest.edited.json.gz",
    "spellbook_hourly/manifest.json.gz",
    "spellbook_hourly/state_modified/manifest.edited.json.gz",
]
SECTIONS = ("nodes", "sources", "exposures", "metrics", "semantic_models", "saved_queries", "unit_tests", "functions")
EDGES = {  # ANCHORS.md, section 2: sum of depends_on.nodes over all sections
    "jaffle_shop_duckdb/manifest.json": 29,
    "tuva/manifest.json": 2909,
    "gitlab_snowflake/manifest.json": 10862,
    "spellbook_hourly/manifest.json.gz": 14644,
}


def schema_version(doc: dict[str, Any]) -> int:
    url: str = doc["metadata"]["dbt_schema_version"]
    return int(url.rsplit("/v", 1)[1].removesuffix(".json"))


def sections(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The resource sections Lockgate keeps: metrics only from v10 (dbt's upgrader drops older ones)."""
    keep = [s for s in SECTIONS if s != "metrics" or schema_version(doc) >= 10]
    return {s: doc.get(s) or {} for s in keep}


def expected_checksum(resource: dict[str, Any]) -> str:
    checksum = resource.get("checksum")
    if checksum is None:
        return ""
    if isinstance(checksum, str):
        return f"sha256:{checksum}"
    return "" if checksum["name"] == "none" else f"{checksum['name']}:{checksum['checksum']}"


def check_node(node: GraphNode, resource: dict[str, Any]) -> None:
    assert node.resource_type == resource["resource_type"]
    assert node.name == resource["name"]
    assert node.checksum == expected_checksum(resource)
    raw = resource.get("raw_code", resource.get("raw_sql"))
    assert node.body_hash == (hashlib.sha256(raw.encode()).hexdigest() if raw else "")
    parents = (resource.get("depends_on") or {}).get("nodes") or []
    assert node.depends_on_nodes == tuple(dict.fromkeys(parents))
    materialized = (resource.get("config") or {}).get("materialized")
    assert node.materialized == materialized
    attached = resource.get("attached_node")
    if attached is None and node.resource_type in ("test", "unit_test") and len(set(parents)) == 1:
        attached = parents[0]
    assert node.attached_node == attached
    version = resource.get("version")
    assert node.version == (None if version is None else str(version))
    assert node.description == (resource.get("description") or "")
    assert node.config == (resource.get("config") or {})
    if node.resource_type == "source":
        assert node.alias == resource["identifier"]
        assert node.source_name == resource["source_name"]
        assert node.extra.get("loaded_at_field") == resource.get("loaded_at_field")
        assert node.extra.get("freshness") == resource.get("freshness")
    elif node.resource_type == "exposure":
        assert node.extra["type"] == resource["type"]
        assert node.extra.get("owner") == resource.get("owner")


@pytest.mark.parametrize("path", MANIFESTS)
def test_manifest_ingests_and_agrees_with_json(path: str) -> None:
    data = corpus_bytes(*path.split("/"))
    doc = json.loads(data)
    parsed = read_manifest(data)
    graph = parsed.graph

    kept = sections(doc)
    assert len(graph.nodes) == sum(len(s) for s in kept.values())
    by_type = Counter(n.resource_type for n in graph.nodes.values())
    assert by_type["source"] == len(doc.get("sources") or {})
    assert by_type["exposure"] == len(doc.get("exposures") or {})
    assert sum(by_type[t] for t in ("model", "test", "seed", "snapshot", "analysis", "operation", "sql_operation")) == (
        len(doc["nodes"])
    )
    edges = sum(len((r.get("depends_on") or {}).get("nodes") or []) for s in kept.values() for r in s.values())
    if path in EDGES:
        assert edges == EDGES[path]
    deduplicated = sum(
        len(set((r.get("depends_on") or {}).get("nodes") or [])) for s in kept.values() for r in s.values()
    )
    assert sum(len(n.depends_on_nodes) for n in graph.nodes.values()) == deduplicated

    for section in kept.values():
        for uid, resource in section.items():
            check_node(graph.nodes[uid], resource)

    assert len(graph.macros) == len(doc["macros"])
    for uid, macro in doc["macros"].items():
        assert graph.macros[uid].sql_hash == hashlib.sha256(macro["macro_sql"].encode()).hexdigest()
    disabled = doc.get("disabled") or {}
    assert len(graph.disabled) == len(disabled if isinstance(disabled, dict) else {r["unique_id"] for r in disabled})
    assert len(graph.groups) == len(doc.get("groups") or {})
    assert graph.selectors == (doc.get("selectors") or {})

    info = graph.info
    assert (info.kind, info.schema_version) == ("manifest", schema_version(doc))
    assert info.dbt_version == doc["metadata"]["dbt_version"]
    assert info.adapter_type == doc["metadata"].get("adapter_type")

    code = msgspec.json.decode(parsed.code, type=dict[str, CodeRecord])
    with_code = {
        uid: r for s in kept.values() for uid, r in s.items() if r.get("raw_code", r.get("raw_sql")) is not None
    }
    assert code.keys() == with_code.keys()
    for uid, record in code.items():
        resource = with_code[uid]
        assert record.raw_code == resource.get("raw_code", resource.get("raw_sql"))
        assert record.compiled_code == resource.get("compiled_code", resource.get("compiled_sql"))


CATALOGS = [
    "jaffle_shop_duckdb/catalog.json",
    "tuva/build/catalog.json",
    "versions/catalog_v1_dbt-1.9.0rc1.json",
    "versions/catalog_v1_dbt-1.11.7.json",
    "versions/catalog_v1_dbt-1.12.0.json",
]


@pytest.mark.parametrize("path", CATALOGS)
def test_catalog(path: str) -> None:
    data = corpus_bytes(*path.split("/"))
    doc = json.loads(data)
    parsed = read_catalog(data)
    tables = {**doc["nodes"], **doc["sources"]}
    assert len(parsed.entries) == len(doc["nodes"]) + len(doc["sources"]) == len(tables)
    assert sum(len(e.columns) for e in parsed.entries.values()) == sum(len(t["columns"]) for t in tables.values())
    for uid, table in tables.items():
        entry = parsed.entries[uid]
        assert entry.relation_type == table["metadata"]["type"]
        assert entry.schema_name == table["metadata"]["schema"]
        assert [c.name for c in entry.columns] == [c["name"] for c in table["columns"].values()]
        assert [c.type for c in entry.columns] == [c["type"] for c in table["columns"].values()]
    assert parsed.info.kind == "catalog"
    assert parsed.warnings == tuple(f"catalog: dbt reported: {e}" for e in doc.get("errors") or ())


def test_tuva_catalog_anchor() -> None:
    entries = read_catalog(corpus_bytes("tuva", "build", "catalog.json")).entries
    assert (len(entries), sum(len(e.columns) for e in entries.values())) == (654, 7523)


RUN_RESULTS = [
    "jaffle_shop_duckdb/run_results.json",
    "jaffle_shop_duckdb/run_results.seed.json",
    "jaffle_shop_duckdb/run_results.docs_generate.json",
    "jaffle_shop_duckdb/failing_test/run_results.json",
    "tuva/build/run_results.json",
    "versions/run_results_v1_dbt-0.19.1.json",
    "versions/run_results_v2_dbt-0.20.2.json",
    "versions/run_results_v3_dbt-0.21.0.json",
    "versions/run_results_v4_dbt-1.0.0.json",
    "versions/run_results_v5_dbt-1.7.0.json",
    "versions/run_results_v6_dbt-1.9.0.json",
    "versions/run_results_v6_dbt-1.11.7.json",
    "versions/run_results_v6_dbt-1.12.0.json",
]


@pytest.mark.parametrize("path", RUN_RESULTS)
def test_run_results(path: str) -> None:
    data = corpus_bytes(*path.split("/"))
    doc = json.loads(data)
    parsed = read_run_results(data)
    assert parsed.info.kind == "run_results"
    assert parsed.info.schema_version == schema_version(doc)
    assert parsed.info.command == doc["args"]["which"]
    assert parsed.elapsed_time == doc["elapsed_time"]
    assert [(r.unique_id, r.status) for r in parsed.results] == [(r["unique_id"], r["status"]) for r in doc["results"]]
    for result, raw in zip(parsed.results, doc["results"], strict=True):
        assert result.failures == raw.get("failures")
        assert result.message == raw.get("message")
        assert result.rows_affected == raw["adapter_response"].get("rows_affected")
        assert result.started_at == (raw["timing"][0]["started_at"] if raw["timing"] else None)


def test_failing_build_statuses() -> None:
    parsed = read_run_results(corpus_bytes("jaffle_shop_duckdb", "failing_test", "run_results.json"))
    assert Counter(r.status for r in parsed.results) == {"fail": 1, "skipped": 14, "pass": 7, "success": 6}
    (failed,) = (r for r in parsed.results if r.status == "fail")
    assert failed.unique_id.startswith("test.jaffle_shop.accepted_values_stg_payments_payment_method")
    assert failed.failures == 1


def test_tuva_build_statuses() -> None:
    parsed = read_run_results(corpus_bytes("tuva", "build", "run_results.json"))
    by_kind = Counter((r.unique_id.split(".")[0], r.status) for r in parsed.results)
    assert len(parsed.results) == 1879
    assert by_kind["test", "pass"] == 988
    assert (by_kind["test", "warn"], by_kind["test", "fail"], by_kind["test", "skipped"]) == (6, 1, 56)
    assert (by_kind["model", "success"], by_kind["model", "skipped"], by_kind["seed", "success"]) == (522, 167, 132)
    assert by_kind["unit_test", "pass"] == 3


def test_docs_generate_run_results_say_so() -> None:
    parsed = read_run_results(corpus_bytes("jaffle_shop_duckdb", "run_results.docs_generate.json"))
    assert parsed.info.command == "generate"


def test_sources_freshness() -> None:
    data = corpus_bytes("jaffle_shop_duckdb", "sources.json")
    parsed = read_sources(data)
    assert parsed.info.kind == "sources"
    assert parsed.info.schema_version == 3
    assert {r.unique_id: r.status for r in parsed.results} == {
        "source.jaffle_shop.raw.raw_orders": "warn",
        "source.jaffle_shop.raw.raw_customers": "pass",
    }
    warned = next(r for r in parsed.results if r.status == "warn")
    assert warned.criteria["warn_after"] == {"count": 1, "period": "day"}
    assert parsed.elapsed_time == json.loads(data)["elapsed_time"]
