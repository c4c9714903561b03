"""$batch: CRLF multipart, atomic change sets, Content-ID references, stop or continue on error."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sync.tables import CHART_OF_ACCOUNTS, CONNECTOR, TAX_TYPE
from tests.sandbox.conftest_ms import MsSandboxes, running_ms_sandboxes

PROD = "contosoprod"


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


def _request(method: str, url: str, body: dict[str, Any] | None = None, content_id: str | None = None) -> str:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        head.append(f"Content-ID: {content_id}")
    lines = [*head, "", f"{method} {url} HTTP/1.1"]
    if body is not None:
        lines += ["Content-Type: application/json; type=entry", "", json.dumps(body)]
    else:
        lines += ["", ""]
    return "\r\n".join(lines)


def _batch(*parts: str | list[str]) -> tuple[str, str]:
    out: list[str] = []
    for number, part in enumerate(parts):
        if isinstance(part, list):
            inner = "".join(f"--changeset_{number}\r\n{item}\r\n" for item in part) + f"--changeset_{number}--"
            out.append(f"--batch_x\r\nContent-Type: multipart/mixed; boundary=changeset_{number}\r\n\r\n{inner}\r\n")
        else:
            out.append(f"--batch_x\r\n{part}\r\n")
    return "".join(out) + "--batch_x--\r\n", "multipart/mixed; boundary=batch_x"


async def _send(ms: MsSandboxes, body: str, content_type: str, prefer: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if prefer:
        headers["Prefer"] = prefer
    return await ms.dv("POST", PROD, "$batch", headers=headers, content=body.encode())


def _statuses(response: httpx.Response) -> list[int]:
    return [int(code) for code in re.findall(r"HTTP/1\.1 (\d{3})", response.text)]


def _connector(connection_id: str) -> dict[str, Any]:
    return {"xdc_name": connection_id, "xdc_connectionid": connection_id, "xdc_xerotenantid": "t"}


async def test_a_failing_change_set_leaves_nothing_behind(ms: MsSandboxes) -> None:
    api = f"/env/{PROD}/api/data/v9.2"
    body, content_type = _batch([
        _request("POST", f"{api}/{CONNECTOR.entity_set}", _connector("c-1"), "1"),
        _request("POST", f"{api}/{TAX_TYPE.entity_set}", {"xdc_ConnectorId@odata.bind": "$1", "xdc_xerotaxtype": "A", "xdc_name": "ok"}, "2"),
        _request("POST", f"{api}/{TAX_TYPE.entity_set}", {"xdc_ConnectorId@odata.bind": "$1", "xdc_xerotaxtype": "B", "xdc_name": "x" * 151}, "3"),
    ])

    response = await _send(ms, body, content_type)

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert "changesetresponse_" in response.text
    assert _statuses(response) == [400]
    assert "Content-ID: 3" in response.text
    assert "0x80044331" in response.text
    assert ms.dataverse.rows(PROD, CONNECTOR.entity_set) == []
    assert ms.dataverse.rows(PROD, TAX_TYPE.entity_set) == []
    assert re.search(r"(?<!\r)\n", response.text) is None  # CRLF line endings only


async def test_change_set_content_ids_link_new_rows(ms: MsSandboxes) -> None:
    body, content_type = _batch(
        [
            _request("POST", f"{ms.api(PROD)}/{CONNECTOR.entity_set}", _connector("c-1"), "1"),
            _request("POST", f"/api/data/v9.2/{CHART_OF_ACCOUNTS.entity_set}",
                     {"xdc_ConnectorId@odata.bind": "$1", "xdc_xeroaccountid": "a", "xdc_name": "Sales"}, "2"),
            _request("PATCH", "$1", {"xdc_plan": "starter"}, "3"),
        ],
        _request("GET", f"{CHART_OF_ACCOUNTS.entity_set}?$select=xdc_name"),
    )

    response = await _send(ms, body, content_type)

    assert response.status_code == 200, response.text
    assert _statuses(response) == [204, 204, 204, 200]
    assert "OData-EntityId: " in response.text
    assert "Location: " in response.text
    connector = ms.dataverse.rows(PROD, CONNECTOR.entity_set)[0]
    assert connector["xdc_plan"] == "starter"
    account = ms.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)[0]
    assert account["_xdc_connectorid_value"] == connector["xdc_connectorid"]
    assert '"xdc_name":"Sales"' in response.text


async def test_the_batch_stops_at_the_first_failure_unless_asked_to_continue(ms: MsSandboxes) -> None:
    parts = (
        _request("POST", f"{CONNECTOR.entity_set}", {"xdc_nope": 1}),
        _request("POST", f"{CONNECTOR.entity_set}", _connector("c-2")),
    )
    body, content_type = _batch(*parts)

    stopped = await _send(ms, body, content_type)
    assert stopped.status_code == 400
    assert _statuses(stopped) == [400]
    assert ms.dataverse.rows(PROD, CONNECTOR.entity_set) == []

    continued = await _send(ms, body, content_type, prefer="odata.continue-on-error")
    assert continued.status_code == 200
    assert continued.headers["Preference-Applied"] == "odata.continue-on-error"
    assert _statuses(continued) == [400, 204]
    assert len(ms.dataverse.rows(PROD, CONNECTOR.entity_set)) == 1


async def test_malformed_and_oversized_batches_get_a_plain_error(ms: MsSandboxes) -> None:
    no_boundary = await _send(ms, "nothing", "multipart/mixed")
    assert no_boundary.status_code == 400
    assert no_boundary.json()["error"]["message"]

    body, content_type = _batch(*[_request("GET", "WhoAmI") for _ in range(1001)])
    too_many = await _send(ms, body, content_type)
    assert too_many.status_code == 400
    assert "1000" in too_many.json()["error"]["message"]

    get_in_changeset, content_type = _batch([_request("GET", "WhoAmI")])
    assert (await _send(ms, get_in_changeset, content_type)).status_code == 400

    dangling, content_type = _batch([_request("PATCH", "$9", {"xdc_plan": "x"}, "1")])
    missing_ref = await _send(ms, dangling, content_type)
    assert missing_ref.status_code == 400
    assert "Content-ID Reference: '$9' does not exist in the batch context." in missing_ref.json()["error"]["message"]


async def test_a_batch_with_lf_line_endings_is_read_too(ms: MsSandboxes) -> None:
    body, content_type = _batch(_request("POST", CONNECTOR.entity_set, _connector("c-9")))

    response = await _send(ms, body.replace("\r\n", "\n"), content_type)

    assert response.status_code == 200
    assert len(ms.dataverse.rows(PROD, CONNECTOR.entity_set)) == 1
