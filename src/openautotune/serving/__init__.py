"""Statsig-compatible serving: bucketing (the one place of the hash), config-spec rendering (v1, v2
and the `cmab_configs` entries of contextual autotunes), their validators, and server-side
evaluation exactly as an SDK would evaluate the same document.

Pure functions over domain values and plain JSON; imports nothing of ours but `domain`.
"""
