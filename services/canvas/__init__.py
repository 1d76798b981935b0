"""The canvas context: how people arrange a project's graph on screen (positions, groups, collapse, viewport)."""
