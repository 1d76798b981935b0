"""The graph read model: nodes, edges, catalog and run history per project and graph version."""
