"""Run as a process: take the leader lock `name` on `url`, say "held" (or "busy"), then hold it until killed.

`python -m tests.background.lock_holder URL NAME`
"""

from __future__ import annotations

import sys
import time

from openautotune.store.database import Database
from openautotune.store.leader_lock import leader_lock


def main() -> None:
    url, name = sys.argv[1], sys.argv[2]
    db = Database.from_url(url)
    lock = leader_lock(db.engine, name)
    print("held" if lock.try_acquire() else "busy", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
