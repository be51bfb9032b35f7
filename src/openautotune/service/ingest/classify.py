"""Is an exposure analysable, and for which run, variant and unit? (engine.md, Units and outcomes)

Pure: it reads the exposure and the facts of its autotune, nothing else. The reasons below are
stored with every raw exposure and listed in docs/ingestion.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from openautotune.domain.autotune import Stage, Status
from openautotune.service.ingest.parse import CheckedExposure, unit_id
from openautotune.store.ingest import AutotuneFacts

PRESTART = "prestart"
EXPLORE_SUFFIX = ":explore"
OVERRIDE_SUFFIX = ":override"
HOLDOUT_SUFFIX = ":holdout"

ANALYSABLE = ""
UNKNOWN_CONFIG = "unknown_config"
PRESTART_RULE = "prestart"
DRAFT = "draft"
NO_UNIT_ID = "no_unit_id"
OVERRIDE = "override"
UNKNOWN_VARIANT = "unknown_variant"
PREVIOUS_RUN = "previous_run"
FINISHED = "finished"


@dataclass(frozen=True)
class Verdict:
    run: int | None
    unit_id: str
    variant_id: str | None
    explore: bool
    reason: str
    holdout: bool = False
    """Served by a holdout rule (`<variant>:holdout`, engine.md "Holdout")."""

    @property
    def analysable(self) -> bool:
        return self.reason == ANALYSABLE


def _run_and_stage(exposure: CheckedExposure, facts: AutotuneFacts) -> tuple[int, bool]:
    """The run the exposure belongs to, and whether it was served after the run was finished.

    The allocation version the SDK echoes names the run and stage that produced the exposure;
    without a known version the exposure counts for the current run, finished by its time.
    """
    allocation = facts.allocations.get(exposure.config_version) if exposure.config_version is not None else None
    if allocation is not None:
        return allocation.run, allocation.stage is Stage.FINISHED
    finished_at = facts.finished_at_ms
    return facts.run, finished_at is not None and exposure.time_ms >= finished_at


def classify(exposure: CheckedExposure, facts: AutotuneFacts | None) -> Verdict:
    if facts is None:
        return Verdict(None, unit_id(exposure.user, exposure.ids, "userID") or "", None, False, UNKNOWN_CONFIG)
    unit = unit_id(exposure.user, exposure.ids, facts.id_type) or ""
    rule = exposure.rule_id
    explore = rule.endswith(EXPLORE_SUFFIX)
    holdout = rule.endswith(HOLDOUT_SUFFIX)
    candidate = rule.removesuffix(EXPLORE_SUFFIX).removesuffix(HOLDOUT_SUFFIX)
    variant = candidate if candidate in facts.variant_ids else None
    run, finished = _run_and_stage(exposure, facts)

    def verdict(reason: str) -> Verdict:
        return Verdict(run, unit, variant, explore, reason, holdout)

    if rule == PRESTART:
        return verdict(PRESTART_RULE)
    if facts.status is Status.DRAFT:
        return verdict(DRAFT)
    if rule.endswith(OVERRIDE_SUFFIX):
        forced = rule.removesuffix(OVERRIDE_SUFFIX)
        return Verdict(run, unit, forced if forced in facts.variant_ids else None, False, OVERRIDE)
    if variant is None:
        return verdict(UNKNOWN_VARIANT)
    if not unit:
        return verdict(NO_UNIT_ID)
    if run != facts.run:
        return verdict(PREVIOUS_RUN)
    if finished:
        return verdict(FINISHED)
    return verdict(ANALYSABLE)
