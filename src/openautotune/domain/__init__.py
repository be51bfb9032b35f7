"""Pure domain: autotunes, variants, runs, allocations, windows and thresholds, lifecycle
transitions, definition rules, key kinds, typed errors and the JSON reader with limits.

Frozen values and pure functions: no I/O, no clock, no randomness. It imports nothing of ours, and
every other package may import it.
"""
