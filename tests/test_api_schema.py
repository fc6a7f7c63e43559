"""Property-based tests of the JSON API with schemathesis: requests generated from
the app's own OpenAPI schema, as a logged-in editor and with a real unit link,
must never make the server fail (no 5xx), whatever they contain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from sqlmodel import select

from pipeline.models import Unit
from pipeline.units import create_link
from tests.conftest import Workspace
from tests.test_web import NOW, PASSWORD, make_desk

EXAMPLES = 25  # per operation: enough to find a crash, small enough for the suite's budget


@dataclass
class Api:
    app: FastAPI
    headers: dict[str, str]
    token: str


@pytest.fixture
def api(workspace: Workspace) -> Iterator[Api]:
    store, app = make_desk(workspace)
    with store.session() as session:
        unit = session.exec(select(Unit).where(Unit.name == "麓谷街道")).one()
        assert unit.id is not None
        token = create_link(session, unit.id, actor="test", now=NOW).token
    with TestClient(app) as client:
        login = client.post("/api/login", json={"name": "editor", "password": PASSWORD})
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        headers = {"Cookie": cookie, "X-CSRF-Token": login.json()["csrf_token"]}
    workspace.run("submit", "--json", str(_report(workspace)), now=NOW.isoformat())
    yield Api(app, headers, token)
    store.close()


def _report(ws: Workspace) -> Any:
    from tests.test_flow import write_report

    return write_report(ws.path, "seed", unit="麓谷街道", kind="lecture",
                        title="麓谷街道禁毒讲座", start="2026-06-14 09:00", photo=True)


def test_api_never_fails_with_a_server_error(api: Api) -> None:
    # One test walks every operation (schemathesis' pytest plugin does not run on
    # this pytest); each operation gets its own bounded Hypothesis run.
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        _fuzz(operation, api)


def _fuzz(operation: Any, api: Api) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        if "token" in (case.path_parameters or {}):
            case.path_parameters["token"] = api.token  # reach past the link check
        case.call_and_validate(headers=api.headers, checks=[not_a_server_error])

    check()
