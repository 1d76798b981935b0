"""Manifests of any size shaped like real dbt projects, for the UI benchmark: seeds at the roots, models in eight
layers (staging, intermediate, marts...) in folders per layer and domain, each with one to three parents mostly
from the layers just before and now and then from far back. Deterministic for a given size and seed.

Built from a real manifest's own node records (the corpus's jaffle_shop), so ingestion reads them as it reads any
manifest; only names, paths, checksums and dependencies change."""

from __future__ import annotations

import copy
import hashlib
import random
from typing import Any

LAYERS = 8
DOMAINS = ("finance", "marketing", "product", "ops", "sales", "support")
ROOT_SHARE = 0.1


def synthetic_manifest(template: dict[str, Any], nodes: int, *, seed: int = 7) -> dict[str, Any]:
    draw = random.Random(f"{seed}:{nodes}")
    package = template["metadata"].get("project_name") or "jaffle_shop"
    model = next(n for n in template["nodes"].values() if n["resource_type"] == "model")
    seed_node = next(n for n in template["nodes"].values() if n["resource_type"] == "seed")
    roots = max(1, int(nodes * ROOT_SHARE))
    per_layer = max(1, (nodes - roots) // LAYERS)
    layers: list[list[str]] = [[]]
    out: dict[str, Any] = {}
    for i in range(roots):
        name = f"raw_{DOMAINS[i % len(DOMAINS)]}_{i:05d}"
        record = _renamed(seed_node, package, name, f"seeds/{DOMAINS[i % len(DOMAINS)]}/{name}.csv")
        out[record["unique_id"]] = record
        layers[0].append(record["unique_id"])
    for i in range(nodes - roots):
        layer = min(LAYERS, 1 + i // per_layer)
        while len(layers) <= layer:
            layers.append([])
        domain = DOMAINS[draw.randrange(len(DOMAINS))]
        name = f"l{layer}_{domain}_{i:05d}"
        record = _renamed(model, package, name, f"models/layer_{layer}/{domain}/{name}.sql")
        parents: set[str] = set()
        for _ in range(draw.choice((1, 1, 2, 2, 3))):
            back = 1 if draw.random() < 0.6 else draw.randint(1, layer) if draw.random() < 0.9 else layer
            pool = layers[max(0, layer - back)] or layers[0]
            parents.add(draw.choice(pool))
        record["depends_on"] = {"macros": [], "nodes": sorted(parents)}
        record["raw_code"] = "\n".join(f"select * from {{{{ ref('{p.split('.')[-1]}') }}}}" for p in sorted(parents))
        record["checksum"] = {"name": "sha256", "checksum": hashlib.sha256(record["raw_code"].encode()).hexdigest()}
        out[record["unique_id"]] = record
        layers[layer].append(record["unique_id"])
    manifest = copy.deepcopy({k: v for k, v in template.items() if k not in ("nodes", "parent_map", "child_map")})
    manifest["nodes"] = out
    for key in ("sources", "exposures", "metrics", "semantic_models", "saved_queries", "unit_tests", "disabled"):
        if key in manifest:
            manifest[key] = {}
    manifest["parent_map"] = {}
    manifest["child_map"] = {}
    return manifest


def _renamed(record: dict[str, Any], package: str, name: str, path: str) -> dict[str, Any]:
    new = copy.deepcopy(record)
    kind = new["resource_type"]
    new.update(
        unique_id=f"{kind}.{package}.{name}",
        name=name,
        alias=name,
        fqn=[package, *path.split("/")[1:-1], name],
        path=path.split("/", 1)[1],
        original_file_path=path,
        relation_name=f'"dev"."main"."{name}"',
        columns={},
        description="",
    )
    new["checksum"] = {"name": "sha256", "checksum": hashlib.sha256(path.encode()).hexdigest()}
    if kind == "model":
        new["refs"] = []
    return new
