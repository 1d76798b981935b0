"""dbt's node selection over a LogicalGraph: the grammar, every method, YAML selectors, ``dbt ls`` semantics.

Entry points live in ``services.planning.selection.engine``: ``select(graph, "tag:nightly+", exclude=...)``
and ``Selector`` (a graph indexed once for many selections).
"""
