"""Use cases shared by the Console API, the dashboard and the CLI: autotune create, edit, start,
decide, reset and delete (each one transaction with its audit entry, allocation and spec-change
mark), overrides, keys, spec state, the exposures log and ingestion of SDK events (`ingest`).

It may import domain, clock and store only: never stats, serving, engine, contextual or a face.
"""
