"""The durable log of raw SDK batches (docs/ingestion.md, "Log first").

One row per batch a client sent and we acknowledged: its id, when it arrived, the body as it must be
read again (`encoding` "gzip" for a gzip body kept as received, "" for plain JSON) and how many
events it holds. The processor turns pending rows (`processed_ms` NULL) into exposure, unit and
event rows, and in the same transaction stamps the row processed, drops its body (the rows are the
record from then on) and keeps the per-batch report (`accepted`, `ignored`, `rejected`, `problems`).
Batches that came through the NATS queue, or were processed in the request (sync mode), get a row
already processed: the batch id is then the guard against a redelivered message storing twice.
Processed rows are deleted after `ingest_log_retention_hours` (service.ingest.retention); pending never.
"""

from __future__ import annotations

import sqlalchemy as sa

from openautotune.store.metadata import EpochMs, metadata

ingest_batches_table = sa.Table(
    "ingest_batches",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("received_ms", EpochMs, nullable=False),
    sa.Column("encoding", sa.String(16), nullable=False, default=""),
    sa.Column("body", sa.LargeBinary, nullable=True),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("processed_ms", EpochMs, nullable=True),
    sa.Column("accepted", sa.Integer, nullable=True),
    sa.Column("ignored", sa.Integer, nullable=True),
    sa.Column("rejected", sa.Integer, nullable=True),
    sa.Column("problems", sa.JSON, nullable=True),
    # "Pending, oldest first" is the processor's one query; NULL sorts into a btree on both databases.
    sa.Index("ix_ingest_batches_pending", "processed_ms", "received_ms"),
)
