"""The ingester's traps and refusals, on real artifacts edited the way a bad or hostile upload would be."""

from __future__ import annotations

import copy
import json
import mmap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingestion.artifacts import read_catalog, read_manifest, read_run_results, read_sources
from services.shared.errors import ArtifactError
from tests.corpus import corpus_bytes

JAFFLE = ("jaffle_shop_duckdb", "manifest.json")
MODEL = "model.jaffle_shop.customers"


@pytest.fixture(scope="module")
def jaffle() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(corpus_bytes(*JAFFLE))
    return doc


def edited(doc: dict[str, Any], edit: Callable[[dict[str, Any]], object]) -> bytes:
    copy_ = copy.deepcopy(doc)
    edit(copy_)
    return json.dumps(copy_).encode()


def refused(data: bytes, reader: Callable[[bytes], object] = read_manifest) -> str:
    with pytest.raises(ArtifactError) as caught:
        reader(data)
    assert caught.value.code == "invalid_artifact"
    return caught.value.message


# --- traps of real manifests -------------------------------------------------------------------------------


def test_generic_tests_have_no_checksum_and_are_attached(jaffle: dict[str, Any]) -> None:
    graph = read_manifest(corpus_bytes(*JAFFLE)).graph
    uid = "test.jaffle_shop.unique_customers_customer_id.c5af1ff4b1"
    assert jaffle["nodes"][uid]["checksum"] == {"name": "none", "checksum": ""}
    assert graph.nodes[uid].checksum == ""
    assert graph.nodes[uid].attached_node == MODEL
    metadata = graph.nodes[uid].test_metadata
    assert metadata is not None
    assert metadata.name == "unique"
    assert graph.nodes[MODEL].checksum.startswith("sha256:")


def test_seeds_without_depends_on_nodes(jaffle: dict[str, Any]) -> None:
    seed = jaffle["nodes"]["seed.jaffle_shop.raw_customers"]
    assert "nodes" not in seed["depends_on"]
    node = read_manifest(corpus_bytes(*JAFFLE)).graph.nodes["seed.jaffle_shop.raw_customers"]
    assert node.depends_on_nodes == ()
    assert node.materialized == "seed"


def test_unit_test_checksum_is_a_plain_string() -> None:
    data = corpus_bytes("versions", "manifest_v12_dbt-1.12.0.json")
    uid = "unit_test.jaffle_shop.orders.test_order_items_compute_to_bools_correctly"
    raw = json.loads(data)["unit_tests"][uid]["checksum"]
    assert isinstance(raw, str)
    node = read_manifest(data).graph.nodes[uid]
    assert node.checksum == f"sha256:{raw}"
    assert node.attached_node == "model.jaffle_shop.orders"


def test_old_raw_sql_is_raw_code() -> None:
    data = corpus_bytes("versions", "manifest_v1_dbt-0.19.1.json")
    parsed = read_manifest(data)
    uid = "model.jaffle_shop.stg_customers"
    assert json.loads(parsed.code)[uid]["raw_code"] == json.loads(data)["nodes"][uid]["raw_sql"]


def test_test_of_a_disabled_model_is_kept_with_a_warning() -> None:
    parsed = read_manifest(corpus_bytes("versions", "manifest_v4_dbt-1.0.0.json"))
    assert "model.jaffle_shop.customers" in parsed.graph.disabled
    assert any("depends on model.jaffle_shop.customers, which is disabled" in w for w in parsed.warnings)


def test_pre_v10_metrics_are_dropped_like_dbt_does() -> None:
    doc = json.loads(corpus_bytes("versions", "manifest_v9_dbt-1.5.0rc1.json"))
    metric = "metric.jaffle_shop.revenue"
    doc["metrics"] = {
        metric: {"unique_id": metric, "resource_type": "metric", "name": "revenue", "package_name": "jaffle_shop"}
    }
    exposure = "exposure.jaffle_shop.dashboard"
    doc["exposures"] = {
        exposure: {
            "unique_id": exposure,
            "resource_type": "exposure",
            "name": "dashboard",
            "package_name": "jaffle_shop",
            "type": "dashboard",
            "owner": {"email": "a@example.com"},
            "depends_on": {"nodes": [metric, "model.jaffle_shop.orders"]},
        }
    }
    parsed = read_manifest(json.dumps(doc).encode())
    assert metric not in parsed.graph.nodes
    assert parsed.graph.nodes[exposure].extra == {"type": "dashboard", "owner": {"email": "a@example.com"}}
    assert any("1 metric(s) dropped" in w for w in parsed.warnings)
    assert any(f"depends on {metric}, a dropped pre-v10 metric" in w for w in parsed.warnings)


def test_v1_disabled_list_is_grouped_by_unique_id() -> None:
    doc = json.loads(corpus_bytes("versions", "manifest_v1_dbt-0.19.1.json"))
    uid = "model.jaffle_shop.fct_orders"
    node = doc["nodes"].pop(uid)
    doc["disabled"] = [node, node]
    parsed = read_manifest(json.dumps(doc).encode())
    assert [n.unique_id for n in parsed.graph.disabled[uid]] == [uid, uid]
    dependents = [u for u, n in doc["nodes"].items() if uid in n["depends_on"]["nodes"]]
    assert dependents
    assert sorted(parsed.warnings) == sorted(f"{u} depends on {uid}, which is disabled" for u in dependents)


def test_future_version_reads_as_newest_with_a_warning() -> None:
    data = corpus_bytes(*JAFFLE).replace(b"/dbt/manifest/v12.json", b"/dbt/manifest/v13.json")
    parsed = read_manifest(data)
    assert parsed.graph.info.schema_version == 13
    assert len(parsed.graph.nodes) == 28
    assert parsed.warnings == ("manifest schema v13 is newer than v12, the newest Lockgate knows: read as v12",)
    runs = corpus_bytes("jaffle_shop_duckdb", "run_results.json").replace(b"run-results/v6", b"run-results/v7")
    assert "newer than v6" in read_run_results(runs).warnings[0]


def test_an_mmap_is_read_and_left_closable(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(corpus_bytes(*JAFFLE))
    with path.open("rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        from_map = read_manifest(memoryview(mapped))
        mapped.close()  # raises BufferError if anything returned still points into the map
    assert from_map == read_manifest(path.read_bytes())


# --- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reader", "path", "expected"),
    [
        (read_manifest, ("jaffle_shop_duckdb", "catalog.json"), "expected a manifest, got a catalog"),
        (read_manifest, ("jaffle_shop_duckdb", "run_results.json"), "expected a manifest, got a run_results"),
        (read_catalog, JAFFLE, "expected a catalog, got a manifest"),
        (read_run_results, ("jaffle_shop_duckdb", "sources.json"), "expected a run_results, got a sources"),
        (read_sources, ("jaffle_shop_duckdb", "run_results.json"), "expected a sources, got a run_results"),
    ],
)
def test_wrong_kind(reader: Callable[[bytes], object], path: tuple[str, str], expected: str) -> None:
    assert expected in refused(corpus_bytes(*path), reader)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (None, "metadata.dbt_schema_version is missing"),
        ("", "metadata.dbt_schema_version is missing"),
        ("manifest v12", "'manifest v12' is not a dbt schema URL"),
        ("https://schemas.getdbt.com/dbt/manifest/v12", "is not a dbt schema URL"),
        ("https://schemas.getdbt.com/dbt/manifest/v0.json", "unknown schema version"),
    ],
)
def test_missing_or_garbled_version(jaffle: dict[str, Any], version: str | None, expected: str) -> None:
    data = edited(jaffle, lambda d: d["metadata"].update(dbt_schema_version=version))
    assert expected in refused(data)


def test_garbled_version_is_named_even_when_the_body_does_not_decode(jaffle: dict[str, Any]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["metadata"]["dbt_schema_version"] = "twelve"
        d["nodes"] = []

    assert "'twelve' is not a dbt schema URL" in refused(edited(jaffle, edit))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "manifest is not valid JSON: Input data was truncated"),
        (b"not json", "manifest is not valid JSON: JSON is malformed: invalid character"),
        (b"[]", "manifest does not match dbt's manifest schema: Expected `object`, got `array`"),
        (b'{"metadata": []}', "Expected `object`, got `array` - at `$.metadata`"),
        (b"{}", "Object missing required field `metadata`"),
    ],
)
def test_not_a_manifest(data: bytes, expected: str) -> None:
    assert expected in refused(data)


def test_truncated(jaffle: dict[str, Any]) -> None:
    data = corpus_bytes(*JAFFLE)
    assert "not valid JSON: Input data was truncated" in refused(data[: len(data) // 2])


def test_wrong_types_name_the_json_path(jaffle: dict[str, Any]) -> None:
    data = edited(jaffle, lambda d: d["nodes"][MODEL].update(tags="daily"))
    message = refused(data)
    assert "Expected `array`, got `str`" in message
    assert "$.nodes[...].tags" in message
    assert "manifest does not match" in refused(edited(jaffle, lambda d: d.update(nodes=[])))


@pytest.mark.parametrize("field", ["description", "raw_code", "compiled_code"])
def test_invalid_utf8(jaffle: dict[str, Any], field: str) -> None:
    marker = "@@not-utf8@@"
    data = edited(jaffle, lambda d: d["nodes"][MODEL].update({field: marker}))
    message = refused(data.replace(marker.encode(), b"\xff\xfe"))
    assert "UTF-8" in message
    if field != "description":  # kept as raw JSON by the decoder, checked (and named) by the normaliser
        assert f"{field} of {MODEL}" in message


def test_duplicate_unique_id_across_sections(jaffle: dict[str, Any]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["exposures"][MODEL] = {**d["nodes"][MODEL], "resource_type": "exposure"}

    assert f"unique_id '{MODEL}' appears in nodes and exposures" in refused(edited(jaffle, edit))


def test_key_that_is_not_the_unique_id(jaffle: dict[str, Any]) -> None:
    data = edited(jaffle, lambda d: d["nodes"].update({"model.jaffle_shop.other": d["nodes"][MODEL]}))
    assert f"nodes key 'model.jaffle_shop.other' holds unique_id '{MODEL}'" in refused(data)


def test_dependency_on_a_node_that_exists_nowhere(jaffle: dict[str, Any]) -> None:
    data = edited(jaffle, lambda d: d["nodes"][MODEL]["depends_on"]["nodes"].append("model.jaffle_shop.ghost"))
    assert f"{MODEL} depends on model.jaffle_shop.ghost, which is not in the manifest" in refused(data)


def test_unique_id_longer_than_4096(jaffle: dict[str, Any]) -> None:
    long_id = "model.jaffle_shop." + "x" * 4079
    assert len(long_id) == 4097

    def edit(d: dict[str, Any]) -> None:
        d["nodes"][long_id] = {**d["nodes"][MODEL], "unique_id": long_id}

    assert "is 4097 characters long (limit 4096)" in refused(edited(jaffle, edit))
    ok = "model.jaffle_shop." + "x" * 4078
    data = edited(jaffle, lambda d: d["nodes"].update({ok: {**d["nodes"][MODEL], "unique_id": ok}}))
    assert ok in read_manifest(data).graph.nodes


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


@pytest.mark.parametrize("field", ["meta", "config", "unrendered_config"])
def test_nesting_deeper_than_64(jaffle: dict[str, Any], field: str) -> None:
    deep = edited(jaffle, lambda d: d["nodes"][MODEL][field].update(deep=nested(64)))  # 65 with the field
    assert f"{MODEL} nests YAML (meta/config) deeper than 64 levels" in refused(deep)
    fine = edited(jaffle, lambda d: d["nodes"][MODEL][field].update(deep=nested(63)))
    assert read_manifest(fine).graph.nodes[MODEL].meta == json.loads(fine)["nodes"][MODEL]["meta"]


def test_column_meta_nesting_is_checked(jaffle: dict[str, Any]) -> None:
    data = edited(jaffle, lambda d: d["nodes"][MODEL]["columns"]["customer_id"]["meta"].update(deep=nested(70)))
    assert f"{MODEL} nests YAML" in refused(data)


def test_nesting_beyond_the_decoder(jaffle: dict[str, Any]) -> None:
    marker = '"@@deep@@"'
    data = edited(jaffle, lambda d: d["nodes"][MODEL]["meta"].update(deep="@@deep@@"))
    message = refused(data.replace(marker.encode(), b"[" * 5000 + b"]" * 5000))
    assert "manifest nests JSON deeper than the decoder allows" in message


@pytest.mark.parametrize(
    "edit",
    [
        lambda n: n.update(description="before\u0000after"),
        lambda n: n["meta"].update({"owner": "a\u0000"}),
        lambda n: n["meta"].update({"key\u0000": 1}),
        lambda n: n["columns"]["customer_id"].update(description="\u0000"),
        lambda n: n.update(tags=["ok", "bad\u0000"]),
    ],
)
def test_nul_in_kept_strings_names_the_node(jaffle: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> None:
    data = edited(jaffle, lambda d: edit(d["nodes"][MODEL]))
    assert f"{MODEL} has a NUL character" in refused(data)


def test_nul_only_in_code_or_as_escaped_text_is_accepted(jaffle: dict[str, Any]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["nodes"][MODEL]["raw_code"] += "-- \u0000"
        d["nodes"][MODEL]["description"] = "a literal \\u0000 is six characters"

    parsed = read_manifest(edited(jaffle, edit))
    assert parsed.graph.nodes[MODEL].description == "a literal \\u0000 is six characters"
    assert json.loads(parsed.code)[MODEL]["raw_code"].endswith("-- \u0000")


def test_nul_in_a_macro_or_selector(jaffle: dict[str, Any]) -> None:
    macro = "macro.jaffle_shop.cents_to_dollars"

    def in_macro(d: dict[str, Any]) -> None:
        d["macros"].setdefault(macro, {**next(iter(d["macros"].values())), "unique_id": macro})
        d["macros"][macro]["name"] = "x\u0000"

    assert f"{macro} has a NUL character" in refused(edited(jaffle, in_macro))
    data = edited(jaffle, lambda d: d["selectors"].update(nightly={"name": "nightly", "definition": "a\u0000"}))
    assert "selector nightly has a NUL character" in refused(data)


# --- properties -----------------------------------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    st.sampled_from(
        [
            "'; DROP TABLE nodes; --",
            '<script>alert("x")</script>',
            "\u202eevil\u202c",
            "🦆🏳️‍🌈",
            '"quoted" \\ back\\slash',
            "\\u0000",
            "\r\n\t",
        ]
    ),
)


@pytest.fixture(scope="module")
def one_model(jaffle: dict[str, Any]) -> dict[str, Any]:
    """The real manifest cut down to its metadata and one model, so that each example decodes in microseconds."""
    model = copy.deepcopy(jaffle["nodes"][MODEL])
    model["depends_on"]["nodes"] = []
    return {"metadata": jaffle["metadata"], "nodes": {MODEL: model}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.tuples(hostile_text, hostile_text, hostile_text, hostile_text), ascii_only=st.booleans())
def test_hostile_strings_round_trip_verbatim(
    one_model: dict[str, Any], texts: tuple[str, str, str, str], ascii_only: bool
) -> None:
    name, description, key, value = texts
    doc = copy.deepcopy(one_model)
    model = doc["nodes"][MODEL]
    model.update(name=name, description=description, tags=[value], meta={key: [value, {key: value}]})
    model["raw_code"] = value
    node = read_manifest(json.dumps(doc, ensure_ascii=ascii_only).encode()).graph.nodes[MODEL]
    assert (node.name, node.description, node.tags) == (name, description, (value,))
    assert node.meta == {key: [value, {key: value}]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=hostile_text, where=st.sampled_from(["name", "description", "meta_key", "meta_value", "path"]))
def test_any_nul_in_a_kept_string_is_refused(one_model: dict[str, Any], text: str, where: str) -> None:
    doc = copy.deepcopy(one_model)
    model = doc["nodes"][MODEL]
    poisoned = text[: len(text) // 2] + "\x00" + text[len(text) // 2 :]
    if where == "meta_key":
        model["meta"] = {poisoned: 1}
    elif where == "meta_value":
        model["meta"] = {"k": poisoned}
    else:
        model[where] = poisoned
    assert f"{MODEL} has a NUL character" in refused(json.dumps(doc).encode())
