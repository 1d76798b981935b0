"""``prioritize_exposures``: what exposures (dashboards, ML models, apps) need runs first.

With at least one exposure in the graph, every item gets a RUN decision with a wave hint: wave 0 for the
ancestors of an exposure and the tests of those ancestors (reason ``exposure_ancestor``, naming up to ten of
the exposures), wave 1 for everything else (reason ``no_exposure``). Inside a wave the planner orders items
topologically (ties by unique_id). Ancestors are closed upward, so no wave-0 item waits for a wave-1 item.
Without exposures it decides nothing (every item stays in wave 0).
"""

from __future__ import annotations

from contracts.plan import Decision
from services.planning.policies._base import reason
from services.planning.policies._context import PolicyContext

_LISTED = 10


class PrioritizeExposures:
    id = "prioritize_exposures"
    version = 1

    def evaluate(self, context: PolicyContext) -> list[Decision]:
        index = context.index
        if not index.exposures:
            return []
        needs, priority = index.exposure_needs, index.exposure_priority
        decisions: list[Decision] = []
        for uid in index.items:
            if uid in priority:
                exposures = needs.get(uid) or tuple(sorted({e for p in index.parents(uid) for e in needs.get(p, ())}))
                evidence = {"exposures": list(exposures[:_LISTED]), "exposure_count": len(exposures)}
                via = "" if uid in needs else " (a test of what they need)"
                message = f"needed by {len(exposures)} exposure(s){via}, first {exposures[0]}"
                why = reason(self, "exposure_ancestor", message, evidence)
                decisions.append(Decision(unique_id=uid, action="RUN", reason=why, wave=0))
            else:
                why = reason(self, "no_exposure", "no exposure depends on it: runs after what exposures need")
                decisions.append(Decision(unique_id=uid, action="RUN", reason=why, wave=1))
        return decisions
