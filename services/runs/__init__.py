"""The run lifecycle: request, plan, approve or reject, cancel (the runner continues it, issue 5)."""
