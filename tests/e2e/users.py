"""Deterministic generated users (Statsig JSON form) for bucketing comparisons."""

from __future__ import annotations

import random
from typing import Any


def generated_users(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Varied ids: uuid-like, numeric, unicode, mixed case; every fifth user also has customIDs."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@é漢"
    users: list[dict[str, Any]] = []
    for index in range(count):
        style = index % 4
        if style == 0:
            user_id = f"{rng.getrandbits(128):032x}"
        elif style == 1:
            user_id = str(rng.randrange(10**12))
        else:
            user_id = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 24)))
        user: dict[str, Any] = {"userID": user_id}
        if index % 5 == 0:
            user["customIDs"] = {"companyID": f"company-{rng.randrange(10**6)}", "stableID": f"s{index}"}
        users.append(user)
    return users
