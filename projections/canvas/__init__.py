"""The canvas read model: each workspace's arrangement of a project's graph."""
