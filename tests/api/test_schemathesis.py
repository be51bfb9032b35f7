"""Property-based run of the whole documented API (schemathesis over /openapi.json) against a live server.

A real server process (tests/e2e/live.py) on SQLite and on PostgreSQL, loaded with autotunes in every
state (tests/api/fuzz_world.py). For every documented operation, the Console API and the SDK endpoints
alike, schemathesis generates valid and invalid requests, each sent with a valid key of the kind the
operation takes (console key for /console, server secret key for the SDK endpoints and in the
`{sdk_key}` of the spec paths); about half of the requests that name an autotune name a seeded one.
Every answer is checked: no status >= 500, every status documented, every body matching its documented
schema. All failures are collected and reported together, each with a curl line to reproduce it.

The budget is fixed: OPENAUTOTUNE_FUZZ_EXAMPLES examples per operation and generation mode (default 5,
which keeps this test near a minute on 2 cores). `make fuzz` sets a larger budget and 50 autotunes, and
prints the tally (requests generated, responses >= 500, time).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api.fuzz_world import World, fuzz_budget, fuzzing, populate
from tests.e2e.live import LiveServer

EXAMPLES = fuzz_budget(5)
AUTOTUNES = 50 if fuzzing() else 6  # one of each kind
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
KEY_HEADER = "STATSIG-API-KEY"
ID_PARAMETERS = ("id", "autotune_id")
# Operations that change what later operations find run last, the deletion of autotunes at the very end.
KINDS = ("MUTATIONS", "READS", "SDK")
LAST = ("reset", "make_decision", "DELETE /console/v1/autotunes/{id}")


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def summary(self, backend: str, operations: int, seconds: float) -> str:
        classes = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        return (
            f"schemathesis [{backend}]: {self.requests} requests over {operations} operations in {seconds:.0f} s, "
            f"{self.server_errors} responses >= 500, {len(self.failures)} failed checks ({classes})"
        )


@pytest.fixture
def fuzzed_server(database_url: str) -> Iterator[tuple[LiveServer, World]]:
    # Every budget off: the fuzzer sends requests as fast as it can generate them (make fuzz: thousands).
    server = LiveServer.start(database_url, env={f"OPENAUTOTUNE_RATE_LIMIT_{kind}": "off" for kind in KINDS})
    try:
        with server.console() as console:
            world = populate(console, server.db, AUTOTUNES)
        yield server, world
    finally:
        server.stop()


def _order(operation: schemathesis.APIOperation) -> tuple[int, str]:
    label = operation.label
    rank = 2 if label == LAST[-1] else 1 if any(word in label for word in LAST[:-1]) else 0
    return rank, label


def _key_headers(operation: schemathesis.APIOperation, server: LiveServer) -> dict[str, str]:
    """The key of the right kind, under the header name the operation documents (if any)."""
    key = server.console_key if operation.path.startswith("/console") else server.server_key
    documented = [p.name for p in operation.headers if p.name.lower() == KEY_HEADER.lower()]
    return {documented[0] if documented else KEY_HEADER: key}


def _cases(operation: schemathesis.APIOperation, server: LiveServer) -> st.SearchStrategy[schemathesis.Case]:
    headers = _key_headers(operation, server)
    paths = {"sdk_key": server.server_key} if "{sdk_key}" in operation.path else None
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return st.one_of(*(operation.as_strategy(mode, headers=headers, path_parameters=paths) for mode in modes))


def _aim(case: schemathesis.Case, autotune_id: str) -> None:
    """Point the case at a seeded autotune: its path id, or the `configName` of an SDK body."""
    for name in ID_PARAMETERS:
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = autotune_id
    if isinstance(case.body, dict) and "configName" in case.body:
        case.body["configName"] = autotune_id


def _send(case: schemathesis.Case, session: requests.Session, tally: Tally, server: LiveServer) -> None:
    tally.requests += 1
    try:
        response = case.call(base_url=server.url, session=session, timeout=30)
    except requests.RequestException as error:  # the server dropped the connection: worse than a 500
        tally.statuses[599] += 1
        tally.failures.append(f"{case.operation.label}: no answer ({error})\n{case.as_curl_command()}")
        return
    tally.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as failures:
        tally.failures.append(f"{case.operation.label}: {failures.message.strip()}")


def _fuzz(operation: schemathesis.APIOperation, server: LiveServer, ids: list[str], tally: Tally) -> None:
    session = requests.Session()

    @given(case=_cases(operation, server), aim=st.integers(0, 2 * len(ids) - 1))
    @settings(
        max_examples=2 * EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case, aim: int) -> None:
        if aim < len(ids):
            _aim(case, ids[aim])
        _send(case, session, tally, server)

    with session:
        run()


def test_documented_api_never_fails(fuzzed_server: tuple[LiveServer, World], database_url: str) -> None:
    server, world = fuzzed_server
    began = time.monotonic()
    api_schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = sorted((result.ok() for result in api_schema.get_all_operations()), key=_order)
    paths = {operation.path for operation in operations}
    assert len(operations) >= 23, sorted(paths)
    for sdk_path in ("/v1/log_event", "/v1/rgstr", "/v1/get_config", "/v2/download_config_specs/{sdk_key}.json"):
        assert sdk_path in paths
    tally = Tally()
    for operation in operations:
        _fuzz(operation, server, world.ids, tally)
    backend = database_url.split(":", 1)[0]
    summary = tally.summary(backend, len(operations), time.monotonic() - began)
    print(f"\n{summary}")
    assert tally.requests >= len(operations) * EXAMPLES, summary
    assert not tally.failures, summary + "\n\n" + "\n\n".join(tally.failures[:20]) + _errors_logged(server)


def _errors_logged(server: LiveServer) -> str:
    """The server's own account of its failures (tracebacks), to tell known issues from new ones."""
    lines = [line for line in server.log().splitlines() if "Error" in line or "error" in line]
    return "\n\nServer log (errors):\n" + "\n".join(lines[-40:]) if lines else ""
