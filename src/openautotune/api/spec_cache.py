"""Config specs rendered once per change and served as ready bytes (plain, gzip, br).

Each request asks `current()`; at most every `refresh_seconds` that compares the store's last
spec change with the cached one and re-renders only when it moved, so several server processes
pick up a change made through any of them within seconds. A rendered document is validated
before it replaces the previous one: a rendering bug never reaches SDKs (the last good document
keeps being served, and the error is logged). An autotune that cannot be rendered on its own (a bad
row: `serving.isolate`) is left out, logged once and reported by `/health`; every other one is served.
"""

from __future__ import annotations

import gzip
import importlib
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import ModuleType

import orjson

from openautotune.service import specs as spec_service
from openautotune.serving import specs_v1, specs_v2
from openautotune.serving.cmab import cmab_configs
from openautotune.serving.entries import Json
from openautotune.serving.evaluate import Evaluator
from openautotune.serving.isolate import unrenderable
from openautotune.serving.validate import validate_v1, validate_v2
from openautotune.store.database import Database

log = logging.getLogger("openautotune.specs")


def _brotli() -> ModuleType | None:
    try:
        return importlib.import_module("brotli")
    except ImportError:  # optional: gzip is enough for every SDK
        return None


BROTLI = _brotli()


@dataclass(frozen=True)
class Encoded:
    """One document in every encoding we offer."""

    identity: bytes
    gzip: bytes
    br: bytes | None

    @classmethod
    def of(cls, body: bytes, *, with_br: bool) -> Encoded:
        br = BROTLI.compress(body, quality=5) if with_br and BROTLI is not None else None
        return cls(identity=body, gzip=gzip.compress(body, compresslevel=6, mtime=0), br=br)


# An SDK reads `time` 0 as "no specs yet": an untouched database still publishes time 1.
FIRST_TIME_MS = 1


@dataclass(frozen=True)
class Published:
    changed_ms: int
    time_ms: int
    v1: Encoded
    v2: Encoded
    checksum: str
    evaluator: Evaluator
    cmab: dict[str, Json]  # the v2 document's `cmab_configs`: `/v1/get_config` serves untrained ones from here
    # Autotune id -> why it is left out of these specs (a row no SDK document can carry).
    unrenderable: dict[str, str]


def publish(state: spec_service.SpecState, suspects: Collection[str] = ()) -> Published:
    """Render, validate and encode both formats without the autotunes that cannot be rendered.

    `suspects` (the ones left out last time) are checked alone first, so a bad row that stays costs
    little. Should the render still fail, every autotune is checked alone (about twice a whole render:
    done only then); raises when none is to blame (a rendering bug)."""
    policies = state.cmab_policies
    left_out = unrenderable([pair for pair in state.pairs if pair[0].id in suspects], policies)
    try:
        return _publish(state, state.unreadable | left_out)
    # Deliberately broad: whatever a bad row makes the renderer raise, the others must still be served.
    except Exception:
        left_out = unrenderable(state.pairs, policies)
        if not left_out:
            raise
    return _publish(state, state.unreadable | left_out)


def _publish(state: spec_service.SpecState, left_out: dict[str, str]) -> Published:
    pairs = tuple(pair for pair in state.pairs if pair[0].id not in left_out)
    time_ms = max(state.changed_ms, FIRST_TIME_MS)
    v1 = specs_v1.render(pairs, time_ms)
    validate_v1(v1)
    evaluator = Evaluator.from_specs(v1)
    cmab = cmab_configs(pairs, state.cmab_policies)
    v2 = specs_v2.render(pairs, time_ms, cmab)
    validate_v2(v2)
    return Published(
        changed_ms=state.changed_ms,
        time_ms=time_ms,
        v1=Encoded.of(orjson.dumps(v1), with_br=False),
        v2=Encoded.of(orjson.dumps(v2), with_br=True),
        checksum=str(v2["checksum"]),
        evaluator=evaluator,
        cmab=cmab,
        unrenderable=left_out,
    )


class SpecsUnavailable(RuntimeError):
    """No valid specs could be rendered yet (only possible on a rendering bug)."""


class SpecCache:
    def __init__(self, db: Database, refresh_seconds: float) -> None:
        self._db = db
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._published: Published | None = None
        self._checked_at = float("-inf")
        self._reported: dict[str, str] = {}  # unrenderable autotunes already logged
        self.on_check: Callable[[], None] | None = None  # after each comparison with the store (metrics)

    def fresh(self) -> Published | None:
        """The cached specs when they need no check now (no I/O: safe on the event loop)."""
        published = self._published
        if published is not None and time.monotonic() - self._checked_at < self._refresh:
            return published
        return None

    def current(self) -> Published:
        """The specs of the latest change (may read the database: call from a worker thread)."""
        published = self.fresh()
        if published is not None:
            return published
        with self._lock:
            published = self.fresh()
            if published is not None:
                return published
            checked_at = time.monotonic()
            published = self._published
            if published is None or spec_service.last_change(self._db) != published.changed_ms:
                published = self._render() or published
            self._published = published
            self._checked_at = checked_at
            if self.on_check is not None:
                self.on_check()
        if published is None:
            raise SpecsUnavailable("config specs could not be rendered; see the server log")
        return published

    def _render(self) -> Published | None:
        state = spec_service.load(self._db)
        try:
            published = publish(state, suspects=self._reported)
        except Exception:  # a rendering bug, of whatever type: SDKs keep the last good specs
            log.exception(
                "config specs of change %s failed validation; still serving the previous ones", state.changed_ms
            )
            return None
        self._report(published.unrenderable)
        rendered = [pair for pair in state.pairs if pair[0].id not in published.unrenderable]
        if self._published is not None and state.pairs and not rendered:
            # Not one autotune renders: a rendering bug, not a bad row. The last good specs stay.
            log.error("no autotune of change %s renders; still serving the previous specs", state.changed_ms)
            return None
        return published

    def left_out(self) -> list[str]:
        """The autotunes the latest render left out (also when it kept the previous specs instead)."""
        return sorted(self._reported)

    def _report(self, problems: dict[str, str]) -> None:
        """Log each unrenderable autotune once (again only if its problem changes), not per render."""
        for autotune_id, problem in problems.items():
            if self._reported.get(autotune_id) != problem:
                log.error("autotune %r cannot be served and is left out of the config specs: %s", autotune_id, problem)
        self._reported = dict(problems)
