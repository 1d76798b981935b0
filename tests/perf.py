"""Speed guards in the test suite: budgets scaled by ``LOCKGATE_PERF_SLACK``.

The budgets are what the code takes on this project's 2-core machines when they are quiet. CI shares its
machine with other work (``.ci/run`` sets a slack of 2), where a budget catches a regression of the code,
not the neighbours' load. The benchmarks (``make bench``) are where speed is measured against anchors.
"""

from __future__ import annotations

import os

PERF_SLACK = float(os.environ.get("LOCKGATE_PERF_SLACK", "1"))
