"""The runs read model: one row per run with its status, plan and decision."""
