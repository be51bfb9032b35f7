"""The engine: one update of one autotune (matured aggregates -> stats -> lifecycle -> record and
new allocation), the scheduler that runs updates every interval, and the reads of results and
update history.

It may import domain, stats, clock, store and `contextual` (whose training step an update calls
for contextual autotunes), never service, serving, a face or a composition root. The simulators
that drive it live in `simulation`.
"""
