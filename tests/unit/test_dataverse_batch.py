"""$batch encoding and decoding (pure functions, wire format of DP:webapi/execute-batch-operations)."""

from __future__ import annotations

import json

import pytest

from bot.sync.dataverse_batch import (
    BatchFormatError,
    BatchRequest,
    boundary_of,
    decode_batch,
    encode_batch,
)

BASE = "https://org.api.crm.dynamics.com/api/data/v9.2"


def test_encode_uses_crlf_parts_with_http_lines_and_json_bodies() -> None:
    content_type, body = encode_batch(
        [
            BatchRequest("PATCH", f"{BASE}/xdc_taxtypes(xdc_xerotaxtype='A')", body={"xdc_name": "A"}),
            BatchRequest("PATCH", f"{BASE}/xdc_taxtypes(xdc_xerotaxtype='B')", body={"xdc_name": "B"}),
        ],
        boundary="batch_abc",
    )
    assert content_type == "multipart/mixed; boundary=batch_abc"
    text = body.decode()
    assert "\n" not in text.replace("\r\n", "")  # CRLF only
    parts = text.split("--batch_abc")
    assert parts[0] == ""
    assert parts[-1] == "--\r\n"
    first = parts[1]
    assert first.startswith("\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n")
    assert f"\r\n\r\nPATCH {BASE}/xdc_taxtypes(xdc_xerotaxtype='A') HTTP/1.1\r\n" in first
    assert "Content-Type: application/json" in first
    _head, _, content = first.partition("HTTP/1.1\r\n")
    _, _, json_body = content.partition("\r\n\r\n")
    assert json.loads(json_body) == {"xdc_name": "A"}


def test_decode_flat_and_changeset_responses_in_order() -> None:
    body = (
        "--batchresponse_1\r\n"
        "Content-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "\r\n"
        "HTTP/1.1 204 No Content\r\n"
        "OData-Version: 4.0\r\n"
        f"OData-EntityId: {BASE}/xdc_taxtypes(8a6b1f9e-0000-4000-8000-000000000001)\r\n"
        "\r\n"
        "\r\n"
        "--batchresponse_1\r\n"
        "Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n"
        "\r\n"
        "--changesetresponse_2\r\n"
        "Content-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "Content-ID: 1\r\n"
        "\r\n"
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: application/json; odata.metadata=minimal\r\n"
        "\r\n"
        '{"error":{"code":"0x80040265","message":"bad row"}}\r\n'
        "--changesetresponse_2--\r\n"
        "--batchresponse_1--\r\n"
    )
    answers = decode_batch("multipart/mixed; boundary=batchresponse_1", body.encode())
    assert [a.status for a in answers] == [204, 400]
    assert answers[0].ok
    assert answers[0].headers["odata-entityid"].endswith("000000000001)")
    assert answers[0].body == ""
    assert not answers[1].ok
    assert answers[1].json() == {"error": {"code": "0x80040265", "message": "bad row"}}


def test_round_trip_of_own_encoding_shape_with_quoted_boundary() -> None:
    assert boundary_of('multipart/mixed; boundary="batchresponse_x"') == "batchresponse_x"
    with pytest.raises(BatchFormatError):
        boundary_of("multipart/mixed")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"error":{"code":"","message":"malformed"}}'),
        ("multipart/mixed; boundary=b", b"no delimiter here"),
        ("multipart/mixed; boundary=b", b"--b\r\nContent-Type: application/http\r\n\r\nnot http\r\n--b--"),
    ],
)
def test_decode_rejects_what_is_not_a_batch_response(content_type: str, body: bytes) -> None:
    with pytest.raises(BatchFormatError):
        decode_batch(content_type, body)
