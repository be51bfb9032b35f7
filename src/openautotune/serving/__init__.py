"""Statsig-compatible serving: bucketing, config-spec rendering (v1, v2) and server-side evaluation.

Pure functions over domain values and plain JSON; imports nothing of ours but `domain`.
"""
