"""Ingestion: everything SDKs log lands durably in the store, ready for the engine (docs/ingestion.md).

Public surface:
- `Ingestor(db, clock).ingest(events)`: one `log_event` batch, one transaction.
- `record_exposures(db, clock, [ExposureInput, ...])` (or `Ingestor.record_exposures`): exposures
  the server served itself, e.g. from `/v1/get_config`.
"""

from openautotune.service.ingest.batch import (
    BatchResult,
    ExposureInput,
    FactsCache,
    Ingestor,
    Rejection,
    record_exposures,
)

__all__ = ["BatchResult", "ExposureInput", "FactsCache", "Ingestor", "Rejection", "record_exposures"]
