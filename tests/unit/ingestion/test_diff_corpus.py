"""Golden tests on real projects: one model edited (a comment line appended), and ``state_modified_plus`` equals
what ``dbt ls --select state:modified+ --state <base>`` printed (``state_modified/dbt_ls_state_modified_plus.txt``).

``dbt ls`` prints one line per node (``dbt/task/list.py``, ``generate_selectors``): the fqn joined by ``.`` for
models, tests, seeds, snapshots, analyses and functions; ``source:<package>.<source_name>.<name>``;
``exposure:``, ``metric:``, ``saved_query:``, ``semantic_model:`` + ``<package>.<name>``;
``unit_test:<package>.<name>[_v<version>]``.
"""

from __future__ import annotations

import time

import pytest

from contracts.graph import GraphNode, LogicalGraph
from services.ingestion.artifacts import read_manifest
from services.ingestion.diff import diff_graphs, modified_nodes, state_modified_plus
from services.ingestion.identity import assign_identities
from tests.corpus import corpus_bytes, corpus_path
from tests.perf import PERF_SLACK

CASES = [
    pytest.param(
        "jaffle_shop_duckdb",
        "state_modified/manifest.base.json",
        "model.jaffle_shop.stg_orders",
        18,
        id="jaffle_shop_duckdb",
    ),
    pytest.param(
        "tuva",
        "manifest.json",
        "model.the_tuva_project.outpatient_psych__match_claims_to_anchor",
        274,
        id="tuva",
    ),
    pytest.param("gitlab_snowflake", "manifest.json", "model.gitlab_snowflake.mart_crm_person", 23, id="gitlab"),
    pytest.param(
        "spellbook_hourly",
        "manifest.json.gz",
        "model.hourly_spellbook.lending_tac_base_borrow",
        42,
        id="spellbook_hourly",
    ),
]
_NAMED = ("exposure", "metric", "saved_query", "semantic_model")


def ls_line(node: GraphNode) -> str:
    """The line ``dbt ls`` prints for ``node`` (default output, ``--output selector``)."""
    rtype = node.resource_type
    if rtype == "source":
        return f"source:{node.package_name}.{node.source_name}.{node.name}"
    if rtype in _NAMED:
        return f"{rtype}:{node.package_name}.{node.name}"
    if rtype == "unit_test":
        versioned = node.name if node.version is None else f"{node.name}_v{node.version}"
        return f"unit_test:{node.package_name}.{versioned}"
    return ".".join(node.fqn)


def load(*parts: str) -> LogicalGraph:
    return read_manifest(corpus_bytes(*parts)).graph


@pytest.mark.parametrize(("project", "base", "edited_model", "count"), CASES)
def test_state_modified_plus_matches_dbt_ls(project: str, base: str, edited_model: str, count: int) -> None:
    edited_name = "manifest.edited.json" if project == "jaffle_shop_duckdb" else "manifest.edited.json.gz"
    prior, new = load(project, *base.split("/")), load(project, "state_modified", edited_name)

    assert modified_nodes(prior, new) == {edited_model}
    assert modified_nodes(prior, new, aspect="body") == {edited_model}
    for aspect in ("configs", "relation", "persisted_descriptions", "macros", "contract"):
        assert modified_nodes(prior, new, aspect=aspect) == set(), aspect

    dbt_lines = corpus_path(project, "state_modified", "dbt_ls_state_modified_plus.txt").read_text().splitlines()
    ours = state_modified_plus(prior, new)
    assert len(dbt_lines) == count
    assert len(set(dbt_lines)) == count
    # map dbt's lines back to unique_ids: every line names exactly one node of the graph
    by_line: dict[str, list[str]] = {}
    for uid, node in new.nodes.items():
        by_line.setdefault(ls_line(node), []).append(uid)
    selected = set()
    for line in dbt_lines:
        assert len(by_line.get(line, [])) == 1, line
        selected.add(by_line[line][0])
    assert ours == selected
    assert len(ours) == count

    ids = assign_identities(None, {}, prior).ids
    identities = assign_identities(prior, ids, new)
    assert identities.renames == ()
    diff = diff_graphs(prior, new, identities)
    assert (diff.added, diff.removed, diff.renamed) == ((), (), ())
    assert [(c.unique_id, c.aspects, c.modified) for c in diff.changed] == [(edited_model, ("body",), True)]


@pytest.mark.parametrize("project", ["gitlab_snowflake", "spellbook_hourly"])
def test_unchanged_real_graph_diffs_fast(project: str) -> None:
    name = "manifest.json.gz" if project == "spellbook_hourly" else "manifest.json"
    prior, again = load(project, name), load(project, name)  # equal but separately decoded
    identities = assign_identities(prior, assign_identities(None, {}, prior).ids, again)
    assert diff_graphs(prior, again, identities).is_empty
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        diff_graphs(prior, again, identities)
        timings.append(time.perf_counter() - start)
    # 9k (GitLab) and 19k (Spellbook, half of them sources) nodes compared field by field
    budget = 0.1 * max(1, len(prior.nodes) / 10_000) * PERF_SLACK
    assert min(timings) < budget, f"{min(timings) * 1000:.1f} ms"
