"""A deterministic generator of DuckDB dbt projects shaped like real ones, for selection conformance tests.

``generate_project(root, models=300, seed=7)`` writes a project whose every draw comes from a
``random.Random`` seeded from ``seed``: the same arguments always write the same files. It parses with ``dbt parse``
(nothing is built). What it holds:

* seeds ``raw_<entity>.csv`` and two sources (``app``, ``crm``) over their tables, with a few source tests;
* staging views ``stg_<source>__<entity>_NNN`` reading one source table each (about 15% of the models);
* intermediate models ``intermediate/<domain>/int_<domain>__<entity>_NNN`` (35%) and marts
  ``marts/<domain>/{fct,dim}_<domain>_<entity>_NNN`` (the rest), with ``ref()`` fan-in drawn like real
  projects: mostly one or two parents, some three to ten, a few *hub* models chosen far more often;
* folder tags, materializations, meta and groups in ``dbt_project.yml``; per-model tags, materializations
  (view/table/incremental/ephemeral) and meta in ``config()`` blocks; access levels in YAML (private models
  are never referenced, so no ref crosses a group); two versioned marts (one with a prerelease version);
* a ``_models.yml`` per folder with generic tests (not_null, unique, accepted_values, relationships, some
  at ``severity: warn``), singular tests (some with two parents), exposures over marts, ``selectors.yml``.

``edited=True`` writes the same project with a few changes, for ``state:`` comparisons (see ``Edits``): a
model body edited, a model's materialization changed (in YAML), a description changed, a new model, a leaf
model removed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_NAME = "gen_shop"
DOMAINS = ("finance", "marketing", "product", "ops")
GROUPS = ("finance", "marketing")
"""Marts of these domains belong to the group of the same name (set per folder in dbt_project.yml)."""
SOURCES: dict[str, tuple[str, ...]] = {"app": ("orders", "customers", "payments", "products"), "crm": ("sessions",)}
ENTITIES = tuple(entity for tables in SOURCES.values() for entity in tables)
MODEL_TAGS = ("pii", "hourly", "core")
STATUSES = ("placed", "shipped", "returned")


@dataclass
class Model:
    name: str
    layer: str  # staging, intermediate, marts
    folder: str  # under models/
    parents: list[str] = field(default_factory=list)
    """Rendered ``ref(...)``/``source(...)`` calls, first one the ``from``."""
    parent_names: list[str] = field(default_factory=list)
    materialized: str | None = None
    """Set in the model's config block; None: the folder's."""
    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    access: str | None = None
    yaml_config: dict[str, str] = field(default_factory=dict)
    """More ``config:`` in the model's ``_models.yml`` entry."""
    description: str = ""
    versions: tuple[int, ...] = ()
    """Versions (``latest_version: 2``, so a 3 is a prerelease), one SQL file each."""
    body_note: str = ""


@dataclass(frozen=True)
class Edits:
    """What ``edited=True`` changes: model names, for the tests' expectations."""

    body: str
    materialization: str
    """Set in ``_models.yml``: a config change, not a body change."""
    description: str
    """Not persisted (no ``persist_docs``): dbt does not call this model modified."""
    new: str
    removed: str


@dataclass
class Generated:
    root: Path
    models: list[Model]
    hubs: list[str]
    versioned: list[str]
    private: list[str]
    edits: Edits

    def names(self, layer: str) -> list[str]:
        return [m.name for m in self.models if m.layer == layer]


def _fan_in(rng: random.Random) -> int:
    draw = rng.random()
    if draw < 0.55:
        return 1
    if draw < 0.85:
        return 2
    if draw < 0.95:
        return rng.randint(3, 4)
    return rng.randint(5, 10)


def _pick(rng: random.Random, pool: list[str], hubs: set[str], count: int) -> list[str]:
    """``count`` distinct names, hubs twenty times as likely as the others."""
    count = min(count, len(pool))
    weights = [20 if name in hubs else 1 for name in pool]
    chosen: list[str] = []
    while len(chosen) < count:
        name = rng.choices(pool, weights)[0]
        if name not in chosen:
            chosen.append(name)
    return chosen


def _maybe_tag(rng: random.Random, model: Model, chance: float) -> None:
    if rng.random() < chance:
        model.tags.append(rng.choice(MODEL_TAGS))


def plan_project(models: int = 300, seed: int = 7) -> Generated:
    """The project ``generate_project`` writes, without writing it (``root`` unset)."""
    rng = random.Random(seed)
    n_staging = max(len(ENTITIES), models * 15 // 100)
    n_intermediate = models * 35 // 100
    tables = [(source, table) for source, names in SOURCES.items() for table in names]
    out: list[Model] = []
    for i in range(n_staging):
        source, table = tables[i % len(tables)]
        model = Model(f"stg_{source}__{table}_{i:03d}", "staging", "staging")
        model.parents = [f"source('{source}', '{table}')"]
        _maybe_tag(rng, model, 0.15)
        out.append(model)
    staging = [m.name for m in out]
    hubs = set(rng.sample(staging, 3))
    intermediate: list[str] = []
    for i in range(n_intermediate):
        domain, entity = rng.choice(DOMAINS), rng.choice(ENTITIES)
        model = Model(f"int_{domain}__{entity}_{i:03d}", "intermediate", f"intermediate/{domain}")
        model.parent_names = _pick(rng, staging + intermediate, hubs, _fan_in(rng))
        model.materialized = "ephemeral" if rng.random() < 0.15 else None
        _maybe_tag(rng, model, 0.2)
        if i == n_intermediate // 3:
            hubs.add(model.name)
        out.append(model)
        intermediate.append(model.name)
    referable: list[str] = []
    versioned: list[str] = []
    private: list[str] = []
    for i in range(models - n_staging - n_intermediate):
        domain, entity = rng.choice(DOMAINS), rng.choice(ENTITIES)
        kind = rng.choice(("fct", "dim"))
        model = Model(f"{kind}_{domain}_{entity}_{i:03d}", "marts", f"marts/{domain}")
        pool = intermediate + referable + (staging if rng.random() < 0.2 else [])
        model.parent_names = _pick(rng, pool, hubs, _fan_in(rng))
        draw = rng.random()
        model.materialized = "incremental" if draw < 0.12 else "view" if draw < 0.2 else None
        _maybe_tag(rng, model, 0.2)
        if rng.random() < 0.3:
            model.meta["owner"] = f"{domain}@gen.example"
        if domain in GROUPS and len(private) < 4 and rng.random() < 0.15:
            model.access = "private"  # never referenced (below): a ref must not leave the group
            private.append(model.name)
        else:
            model.access = rng.choice(("public", "protected", None))
            referable.append(model.name)
        if len(versioned) < 2 and domain in GROUPS and model.access == "public" and model.materialized is None:
            model.versions = (1, 2) if not versioned else (1, 2, 3)
            versioned.append(model.name)
        if len(referable) == 6 and referable[-1] == model.name:
            hubs.add(model.name)
        out.append(model)
    by_name = {m.name: m for m in out}
    for model in out:
        if model.layer != "staging":
            model.parents = [
                f"ref('{name}', v=1)" if by_name[name].versions and rng.random() < 0.3 else f"ref('{name}')"
                for name in model.parent_names
            ]
    referenced = {name for m in out for name in m.parent_names}
    leaves = [m.name for m in out if m.layer == "marts" and m.name not in referenced and m.name in referable]
    plain = [
        m.name for m in out if m.layer == "marts" and m.materialized is None and m.name in referenced and not m.versions
    ]
    edits = Edits(
        body=intermediate[n_intermediate // 2],
        materialization=plain[len(plain) // 2],
        description=plain[len(plain) // 3],
        new="fct_finance_new_000",
        removed=[name for name in leaves if not by_name[name].versions][-1],
    )
    return Generated(Path(), out, sorted(hubs), versioned, private, edits)


# ------------------------------------------------------------------------------------------------------ files


def _sql(model: Model) -> str:
    config: list[str] = []
    if model.materialized:
        config.append(f"materialized='{model.materialized}'")
    if model.tags:
        config.append(f"tags={model.tags!r}")
    if model.meta:
        config.append(f"meta={model.meta!r}")
    lines = [f"{{{{ config({', '.join(config)}) }}}}"] if config else []
    lines.append("select p0.id, p0.status, p0.amount, p0.updated_at")
    lines.append(f"from {{{{ {model.parents[0]} }}}} as p0")
    for k, parent in enumerate(model.parents[1:], start=1):
        lines.append(f"left join {{{{ {parent} }}}} as p{k} on p0.id = p{k}.id")
    if model.body_note:
        lines.append(model.body_note)
    return "\n".join(lines) + "\n"


def _tests(model: Model, rng: random.Random) -> list[str]:
    """The ``columns:`` block of a model in its ``_models.yml``."""

    def test(name: str, arguments: str = "") -> str:
        config = "\n              config: {severity: warn}" if rng.random() < 0.1 else ""
        args = f"\n              arguments: {arguments}" if arguments else ""
        return f"          - {name}:{args}{config}" if args or config else f"          - {name}"

    id_tests = [test("not_null")] + ([test("unique")] if rng.random() < 0.5 else [])
    lines = ["    columns:", "      - name: id", "        data_tests:", *id_tests]
    if rng.random() < 0.2:
        values = json.dumps(list(STATUSES))
        lines += ["      - name: status", "        data_tests:", test("accepted_values", f"{{values: {values}}}")]
    if model.parent_names and rng.random() < 0.25:
        to = f"ref('{model.parent_names[0]}')"
        lines += ["      - name: parent_id", "        data_tests:", test("relationships", f'{{to: "{to}", field: id}}')]
    return lines


def _models_yml(models: list[Model], seed: int) -> str:
    lines = ["models:"]
    for model in models:
        rng = random.Random(f"{seed}:{model.name}")  # one per model: an edit never moves another's tests
        description = model.description or f"Generated {model.layer} model {model.name}."
        lines += [f"  - name: {model.name}", f"    description: {description}"]
        config = model.yaml_config | ({"access": model.access} if model.access else {})
        if config:
            lines += ["    config:", *(f"      {key}: {value}" for key, value in config.items())]
        if model.versions:
            lines += ["    latest_version: 2", "    versions:"]
            for v in model.versions:
                lines.append(f"      - v: {v}")
                if v == 1:
                    lines += ["        config:", "          access: protected"]
        lines += _tests(model, rng)
    return "\n".join(lines) + "\n"


def _dbt_project() -> str:
    domains = "\n".join(f'      {d}:\n        +tags: ["{d}"]' for d in DOMAINS)
    marts = "\n".join(
        f'      {d}:\n        +tags: ["{d}"]' + (f"\n        +group: {d}" if d in GROUPS else "") for d in DOMAINS
    )
    return f"""name: {PROJECT_NAME}
version: "1.0.0"
profile: lockgate_generated

flags:
  send_anonymous_usage_stats: false

seeds:
  {PROJECT_NAME}:
    +tags: ["raw"]

models:
  {PROJECT_NAME}:
    +meta:
      owner: "data@gen.example"
    staging:
      +materialized: view
      +tags: ["staging"]
    intermediate:
      +materialized: view
      +tags: ["intermediate"]
{domains}
    marts:
      +materialized: table
      +tags: ["marts"]
{marts}
"""


def _sources_yml() -> str:
    lines = ["sources:"]
    for source, tables in SOURCES.items():
        lines += [f"  - name: {source}", '    schema: "{{ target.schema }}"', "    tables:"]
        for table in tables:
            lines += [f"      - name: {table}", f"        identifier: raw_{table}"]
            if table in ("orders", "sessions"):
                lines += ["        columns:", "          - name: id", "            data_tests: [not_null, unique]"]
    return "\n".join(lines) + "\n"


def _groups_yml() -> str:
    lines = ["groups:"]
    for group in GROUPS:
        lines += [
            f"  - name: {group}",
            "    owner:",
            f"      name: {group.title()}",
            f"      email: {group}@gen.example",
        ]
    return "\n".join(lines) + "\n"


def _exposures_yml(marts: list[str], rng: random.Random) -> str:
    lines = ["exposures:"]
    for k, name in enumerate(("board_pack", "growth_dashboard", "ops_monitor", "pricing_notebook")):
        lines += [f"  - name: {name}", f"    type: {'notebook' if k == 3 else 'dashboard'}", "    owner:"]
        lines += ["      email: bi@gen.example", "    depends_on:"]
        lines += [f"      - ref('{m}')" for m in rng.sample(marts, rng.randint(1, 4))]
        if k % 2 == 0:
            lines += ["    config:", '      tags: ["reporting"]']
    return "\n".join(lines) + "\n"


def _selectors_yml(hub: str) -> str:
    return f"""selectors:
  - name: finance_marts
    definition:
      intersection:
        - tag:marts
        - tag:finance
  - name: staging_or_pii
    definition:
      union:
        - tag:staging
        - method: tag
          value: pii
  - name: hub_lineage
    definition:
      method: fqn
      value: {hub}
      parents: true
      children: true
      children_depth: 2
  - name: marts_not_incremental
    definition:
      union:
        - tag:marts
        - exclude:
            - config.materialized:incremental
  - name: exposures_upstream_cautious
    definition:
      method: exposure
      value: "*"
      parents: true
      parents_depth: 3
      indirect_selection: cautious
  - name: nested
    definition:
      union:
        - intersection:
            - tag:finance
            - method: path
              value: models/marts
              children: true
        - method: selector
          value: staging_or_pii
        - exclude:
            - union:
                - config.materialized:view
                - test_type:singular
"""


def generate_project(root: Path, *, models: int = 300, seed: int = 7, edited: bool = False) -> Generated:
    """Write the project into ``root`` (created) and describe it."""
    project = plan_project(models, seed)
    project.root = root
    edits = project.edits
    by_name = {m.name: m for m in project.models}
    if edited:
        by_name[edits.body].body_note = "where p0.amount >= 0  -- edited"
        by_name[edits.materialization].yaml_config["materialized"] = "view"
        by_name[edits.description].description = "Edited description."
        hub = next(h for h in project.hubs if by_name[h].layer == "intermediate")
        new = Model(edits.new, "marts", "marts/finance", [f"ref('{hub}')"], [hub], tags=["core"])
        project.models = [m for m in project.models if m.name != edits.removed] + [new]

    files: dict[str, str] = {"dbt_project.yml": _dbt_project()}
    rng = random.Random(seed + 1)
    for entity in ENTITIES:
        rows = [f"{k},{rng.choice(STATUSES)},{rng.randint(1, 999)},2026-0{k}-01 00:00:00" for k in range(1, 4)]
        files[f"seeds/raw_{entity}.csv"] = "\n".join(["id,status,amount,updated_at", *rows]) + "\n"
    files["models/staging/_sources.yml"] = _sources_yml()
    files["models/marts/_groups.yml"] = _groups_yml()
    folders: dict[str, list[Model]] = {}
    for model in project.models:
        folders.setdefault(model.folder, []).append(model)
        for v in model.versions or (None,):
            file = model.name if v is None else f"{model.name}_v{v}"
            files[f"models/{model.folder}/{file}.sql"] = _sql(model)
    for folder in sorted(folders):
        files[f"models/{folder}/_models.yml"] = _models_yml(folders[folder], seed)
    candidates = sorted(
        m.name
        for m in project.models
        if m.layer == "marts" and m.access != "private" and m.name not in (edits.removed, edits.new)
    )
    files["models/marts/_exposures.yml"] = _exposures_yml(candidates, random.Random(seed + 2))
    pick = random.Random(seed + 3)
    for k in range(4):
        first, second = pick.sample(candidates, 2)
        join = f"join {{{{ ref('{second}') }}}} as b on a.id = b.id\n" if k % 2 else ""  # two parents
        sql = f"select a.id from {{{{ ref('{first}') }}}} as a\n{join}where a.amount < 0\n"
        files[f"tests/assert_generated_{k}.sql"] = sql
    files["selectors.yml"] = _selectors_yml(project.hubs[0])

    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project
