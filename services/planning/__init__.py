"""Planning: dbt's selection grammar over the LogicalGraph, policies, cost estimates and ExecutionPlans (issue 4)."""
