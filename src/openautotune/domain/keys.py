"""API keys as the domain sees them: three kinds, told apart by prefix, stored only as hashes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KeyKind(StrEnum):
    CONSOLE = "console"
    SERVER = "server"
    CLIENT = "client"


@dataclass(frozen=True)
class KeyRecord:
    id: str
    kind: KeyKind
    read_only: bool
    description: str
    key_hash: str
    hint: str
    created_ms: int
    revoked_ms: int | None

    @property
    def active(self) -> bool:
        return self.revoked_ms is None
