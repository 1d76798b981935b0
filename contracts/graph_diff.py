"""What changed between two versions of a project's LogicalGraph: the Structs graph events embed.

A diff compares the prior graph with the new one *after* stable identities were assigned (a node renamed in
dbt keeps its Lockgate ``node_uuid``), so it speaks of four kinds of node: ``added`` (a new identity),
``removed`` (an identity that is gone), ``renamed`` (same identity, new ``unique_id``) and ``changed``
(same identity, different record). A renamed node whose record also differs (its ``fqn`` and ``name`` at
least) is in ``changed`` too, under its new ``unique_id``, compared with its old record.

Aspects: the closed vocabulary of what differs in a changed node. The *modifying* aspects are the ones
dbt's ``state:modified`` selects on; the first six are dbt's own sub-selectors (``state:modified.body``...)::

    body                    raw_code (seeds: the file checksum)
    configs                 unrendered config, minus alias/schema/database/tags/group (tests: only
                            severity/where/limit/fail_calc/warn_if/error_if/store_failures(_as))
    relation                unrendered database/schema/alias (sources: database/schema/identifier)
    persisted_descriptions  model or column descriptions, only where persist_docs persists them
    macros                  a macro the node uses, directly or through other macros, was added, removed
                            or its SQL changed
    contract                the model contract (enforcement or its checksum)
    versions                a model's latest_version, access or deprecation_date
    fqn                     the fully qualified name
    checksum                a unit test's checksum, or a seed's file checksum (then also ``body``: dbt's
                            same_body compares the checksum for seeds)
    definition              the other attributes dbt compares for sources (quoting, freshness,
                            loaded_at_field, external), exposures (type, owner, maturity, url,
                            description, label, depends_on), metrics, semantic models, saved queries, functions

The *informational* aspects change the stored record without making the node ``state:modified``::

    description  columns  meta  tags  depends_on  docs  other

``NodeChange.modified`` is true exactly when a modifying aspect is present. Every tuple is sorted, so the
same two graphs always give byte-identical diffs.
"""

from __future__ import annotations

import uuid

import msgspec

MODIFYING_ASPECTS: frozenset[str] = frozenset(
    {
        "body",
        "configs",
        "relation",
        "persisted_descriptions",
        "macros",
        "contract",
        "versions",
        "fqn",
        "checksum",
        "definition",
    }
)
"""Aspects that make a node ``state:modified``."""

INFORMATIONAL_ASPECTS: frozenset[str] = frozenset(
    {"description", "columns", "meta", "tags", "depends_on", "docs", "other"}
)
"""Aspects that change the stored record but not dbt's ``state:modified``."""

ASPECTS: frozenset[str] = MODIFYING_ASPECTS | INFORMATIONAL_ASPECTS

DBT_SUB_SELECTORS: tuple[str, ...] = ("body", "configs", "contract", "macros", "persisted_descriptions", "relation")
"""The aspects that are dbt sub-selectors (``state:modified.<aspect>``)."""


class NodeChange(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One node whose identity survived but whose record (or an upstream macro) differs."""

    unique_id: str
    """The node's ``unique_id`` in the new graph."""
    node_uuid: uuid.UUID
    aspects: tuple[str, ...]
    """Sorted, from ``ASPECTS``."""
    modified: bool
    """dbt's ``state:modified``: some aspect is in ``MODIFYING_ASPECTS``."""


class NodeRename(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A node whose ``unique_id`` changed while it stayed the same node (same code, same parents)."""

    old_unique_id: str
    new_unique_id: str
    node_uuid: uuid.UUID


class GraphDiff(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The difference between two graph versions; every tuple is sorted (by unique_id)."""

    added: tuple[str, ...] = ()
    """unique_ids (new graph) of nodes with a new identity."""
    removed: tuple[str, ...] = ()
    """unique_ids (prior graph) of identities that are gone."""
    renamed: tuple[NodeRename, ...] = ()
    """Sorted by ``old_unique_id``."""
    changed: tuple[NodeChange, ...] = ()
    """Sorted by ``unique_id``."""
    macros_added: tuple[str, ...] = ()
    macros_removed: tuple[str, ...] = ()
    macros_changed: tuple[str, ...] = ()
    """Macros whose own SQL changed (not those that only call a changed macro)."""

    @property
    def is_empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.renamed
            or self.changed
            or self.macros_added
            or self.macros_removed
            or self.macros_changed
        )

    @property
    def modified(self) -> tuple[str, ...]:
        """unique_ids of changed nodes that dbt would call ``state:modified`` (new nodes not included)."""
        return tuple(change.unique_id for change in self.changed if change.modified)
