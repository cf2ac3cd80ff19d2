"""Cursors of DynamoDB lists are opaque, URL-safe and cannot be forged."""

import re

import pytest
from django.test import Client

from api.pagination import decode_cursor, encode_cursor
from core.errors import ApplicationError

LAST_KEY = {"pk": {"S": "branch#42"}, "sk": {"S": "2026-01-02T10:00:00.000000Z#01J0ABC"}}


def test_a_cursor_round_trips_and_is_url_safe():
    token = encode_cursor(LAST_KEY)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)
    assert "branch#42" not in token
    assert decode_cursor(token) == LAST_KEY


def test_no_key_is_no_cursor_and_no_cursor_is_the_first_page():
    assert encode_cursor(None) is None
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "token",
    [
        "not-a-cursor",
        "eyJwayI6eyJTIjoiYnJhbmNoIzEifX0",  # base64 JSON of a key, unsigned
        "eyJwayI6eyJTIjoiYnJhbmNoIzEifX0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_a_forged_cursor_is_refused(token):
    with pytest.raises(ApplicationError) as raised:
        decode_cursor(token)
    assert (raised.value.code, raised.value.status, raised.value.field) == (
        "invalid_cursor",
        400,
        "cursor",
    )


def test_an_edited_cursor_is_refused():
    token = encode_cursor(LAST_KEY)
    edited = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    with pytest.raises(ApplicationError):
        decode_cursor(edited)


def test_a_cursor_of_another_list_is_refused():
    token = encode_cursor(LAST_KEY, namespace="branch:1")
    assert decode_cursor(token, namespace="branch:1") == LAST_KEY
    with pytest.raises(ApplicationError):
        decode_cursor(token, namespace="branch:2")


@pytest.mark.urls("api.tests.urls")
def test_cursor_pages_over_http_and_a_forged_cursor_is_a_400():
    client = Client()
    first = client.get("/api/test/cursor", {"page_size": 2}).json()
    assert first["results"] == [0, 1]
    second = client.get("/api/test/cursor", {"page_size": 2, "cursor": first["next"]}).json()
    assert second["results"] == [2, 3]
    last = client.get("/api/test/cursor", {"page_size": 2, "cursor": second["next"]}).json()
    assert last == {"results": [4], "next": None}
    response = client.get("/api/test/cursor", {"cursor": first["next"] + "x"})
    assert response.status_code == 400
    message = "The cursor is not valid: use the 'next' value of the previous page as it is."
    assert response.json() == {
        "error": {"code": "invalid_cursor", "message": message, "fields": {"cursor": [message]}}
    }
    bad_size = client.get("/api/test/cursor", {"page_size": "0"})
    assert bad_size.status_code == 400
    assert bad_size.json()["error"]["fields"].keys() == {"page_size"}
