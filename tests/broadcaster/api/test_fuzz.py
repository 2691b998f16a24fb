"""Schemathesis against the API's own OpenAPI document, over real HTTP, signed in as an admin: whatever
the document lets a client send — and the edges it generates around it — no request may get a 5xx.

Bounded (a few examples per operation, no shrinking) so it fits the suite; the full campaign is a
matter of raising LOA_FUZZ_EXAMPLES.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from broadcaster.api.app import create_app
from broadcaster.api.server import HttpServer
from broadcaster.db import Role
from broadcaster.services.zones import add_village
from schedules.clock import SystemClock
from tests.broadcaster.conftest import make_services, make_token

EXAMPLES = int(os.environ.get("LOA_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Callable[[], dict[str, str]]]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    svc = make_services(
        tmp, f"sqlite:///{tmp / 'loa.sqlite3'}", SystemClock(),
        LOA_SCHEDULE_QUIET_START="00:00", LOA_SCHEDULE_QUIET_END="00:00",
    )  # fmt: skip
    with svc.db.session() as s:
        add_village(s, "thon-1", "Thôn 1")
    server = HttpServer(create_app(svc, svc.audio.store), "127.0.0.1", 0)
    server.start()

    def fresh() -> dict[str, str]:  # the fuzz may revoke its own token or change its password
        return {"Authorization": f"Bearer {make_token(svc, 'fuzz-admin', Role.ADMIN)}"}

    yield server.url, fresh
    server.stop()
    svc.db.dispose()


@pytest.fixture(scope="module")
def api_schema(served: tuple[str, Callable[[], dict[str, str]]]) -> Any:
    url, auth = served
    document = httpx.get(f"{url}/api/v1/openapi.json", headers=auth(), timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.base_url = url
    return schema


def test_no_request_gets_a_server_error(api_schema: Any, served: tuple[str, Callable[[], dict[str, str]]]) -> None:
    """Every operation of the document, in turn: the cases Schemathesis generates from its schemas
    (valid ones and the edges around them), each sent for real; a 5xx fails with the request."""
    url, auth = served
    failures: list[str] = []
    seen: Counter[tuple[str, str, int]] = Counter()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        headers = auth()

        _fuzz(operation, url, headers, seen, failures)
    assert not failures, failures
    # the fuzz went past the gates to the services: answers other than the gates' own
    gates = {401, 403, 411, 413}
    reached = {(m, p) for m, p, status in seen if status not in gates}
    assert ("POST", "/api/v1/announcements") in reached and ("POST", "/api/v1/programmes") in reached, seen


def _fuzz(operation: Any, url: str, headers: dict[str, str], seen: Counter[Any], failures: list[str]) -> None:
    """The generated cases of one operation, each sent for real; a 5xx is noted with its request."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    def send(case: Any) -> None:
        response = case.call(base_url=url, headers=headers)
        seen[(case.method, case.path, response.status_code)] += 1
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {case.method} {case.formatted_path} {case.body!r:.300}")

    send()


def test_the_fuzzed_document_covers_what_people_do(api_schema: Any) -> None:
    """The fuzz reaches the operations that store things, not only the reads."""
    operations = {(op.method.upper(), op.path) for op in (r.ok() for r in api_schema.get_all_operations())}
    for wanted in (("POST", "/api/v1/announcements"), ("POST", "/api/v1/programmes"),
                   ("POST", "/api/v1/recordings"), ("DELETE", "/api/v1/announcements/{announcement_id}")):  # fmt: skip
        assert wanted in operations, wanted

