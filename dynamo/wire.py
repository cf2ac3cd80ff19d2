"""DynamoDB's JSON protocol sent by hand, for the one write on the hot path (a payment's
ingestion: one ``TransactWriteItems`` a request).

botocore's generic path costs about a millisecond of CPU a call (event hooks, its
serializer walking the API model, the user agent, the response parser); the body here is
already DynamoDB's wire JSON. So this module signs it with AWS Signature Version 4 (the
signing key cached for the day; the same signature as botocore's ``SigV4Auth``, which a
test compares), sends it on a kept-alive connection of the thread (``http.client``), checks
the response's CRC32 as botocore does, and answers what botocore would raise: a
``VerboseClientError`` with the cancellation reasons for an error answer, botocore's
``EndpointConnectionError`` / ``ReadTimeoutError`` when the store cannot be reached. Errors
worth a retry (unreachable, a 5xx, throttling) are retried here with exponential backoff
and jitter, ``settings.DYNAMODB_MAX_RETRIES`` times, as botocore's standard mode does.

Credentials: ``settings.DYNAMODB_ACCESS_KEY``/``SECRET_KEY`` when set, otherwise AWS's
usual chain through botocore (an instance or task role's are refreshed by botocore). The
fault injection of the reliability tests (``dynamo/tests/faults.py``) patches
:meth:`WireClient.call` as it patches botocore's client.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import random
import socket
import ssl
import threading
import time
import zlib
from urllib.parse import urlsplit

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from django.conf import settings
from pynamodb.exceptions import CancellationReason, VerboseClientError

from .connection import for_settings

SERVICE = "dynamodb"
TARGET = "DynamoDB_20120810"
CONTENT_TYPE = "application/x-amz-json-1.0"
RETRY_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
BASE_DELAY = 0.05


class _Retry(Exception):
    """An attempt that may be tried again; ``error`` is raised when none is left."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def client_error(
    operation: str, status: int, body: dict, request_id: str = ""
) -> VerboseClientError:
    """botocore's error for DynamoDB's error answer, as PynamoDB builds it (the code, the
    message, and a cancelled transaction's reasons in the order of its items)."""
    code = str(body.get("__type", "")).rpartition("#")[2] or f"HTTP{status}"
    message = body.get("message") or body.get("Message") or ""
    reasons = body.get("CancellationReasons") or []
    return VerboseClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
        {"request_id": request_id, "table_name": ""},
        cancellation_reasons=(
            CancellationReason(code=r["Code"], message=r.get("Message"), raw_item=r.get("Item"))
            if r.get("Code") != "None"
            else None
            for r in reasons
        ),
    )


class WireClient:
    """One endpoint's signed JSON calls; a connection per thread, kept alive."""

    def __init__(self) -> None:
        endpoint = (
            settings.DYNAMODB_ENDPOINT
            or f"https://dynamodb.{settings.DYNAMODB_REGION}.amazonaws.com"
        )
        parts = urlsplit(endpoint)
        self.endpoint = endpoint
        self.https = parts.scheme == "https"
        self.address = (parts.hostname, parts.port or (443 if self.https else 80))
        self.host = parts.netloc
        self.region = settings.DYNAMODB_REGION
        self.connect_timeout = settings.DYNAMODB_CONNECT_TIMEOUT
        self.read_timeout = settings.DYNAMODB_READ_TIMEOUT
        self.attempts = 1 + settings.DYNAMODB_MAX_RETRIES
        self._static = (
            (settings.DYNAMODB_ACCESS_KEY, settings.DYNAMODB_SECRET_KEY, None)
            if settings.DYNAMODB_ACCESS_KEY and settings.DYNAMODB_SECRET_KEY
            else None
        )
        self._provider = None
        self._keys: dict[tuple[str, str], bytes] = {}
        self._local = threading.local()
        self._ssl = ssl.create_default_context() if self.https else None

    # --- signing ------------------------------------------------------------------------

    def credentials(self) -> tuple[str, str, str | None]:
        if self._static is not None:
            return self._static
        if self._provider is None:
            import botocore.session

            self._provider = botocore.session.get_session().get_credentials()
            if self._provider is None:
                raise EndpointConnectionError(endpoint_url=self.endpoint, error="no credentials")
        frozen = self._provider.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token

    def _signing_key(self, secret: str, day: str) -> bytes:
        key = self._keys.get((secret, day))
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, self.region, SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}  # yesterday's goes
        return key

    def signed_headers(self, operation: str, payload: bytes, now: dt.datetime) -> dict[str, str]:
        """The request's headers with its SigV4 ``Authorization`` (``now`` in UTC)."""
        access_key, secret, token = self.credentials()
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        headers = {
            "content-type": CONTENT_TYPE,
            "host": self.host,
            "x-amz-date": amz_date,
            "x-amz-target": f"{TARGET}.{operation}",
        }
        if token:
            headers["x-amz-security-token"] = token
        names = sorted(headers)
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                *(f"{name}:{headers[name]}" for name in names),
                "",
                ";".join(names),
                hashlib.sha256(payload).hexdigest(),
            ]
        )
        scope = f"{day}/{self.region}/{SERVICE}/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"
        signature = hmac.new(self._signing_key(secret, day), to_sign.encode(), hashlib.sha256)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature.hexdigest()}"
        )
        return headers

    # --- sending ------------------------------------------------------------------------

    def call(self, operation: str, body: dict) -> dict:
        """One DynamoDB operation: its parsed answer, or botocore's error for it."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        for number in range(self.attempts):
            try:
                return self._attempt(operation, payload)
            except _Retry as retry:
                if number == self.attempts - 1:
                    raise retry.error from None
                time.sleep(BASE_DELAY * 2**number * (0.5 + random.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            host, port = self.address
            if self.https:
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self.connect_timeout, context=self._ssl
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
            connection.connect()
            connection.sock.settimeout(self.read_timeout)
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _attempt(self, operation: str, payload: bytes) -> dict:
        headers = self.signed_headers(operation, payload, dt.datetime.now(dt.UTC))
        try:
            connection = self._connection()
            connection.request("POST", "/", payload, headers)
            response = connection.getresponse()
            data = response.read()
        except TimeoutError as exc:
            self._drop()
            raise _Retry(ReadTimeoutError(endpoint_url=self.endpoint, error=exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise _Retry(EndpointConnectionError(endpoint_url=self.endpoint, error=exc)) from exc
        if response.will_close:
            self._drop()
        crc = response.getheader("x-amz-crc32")
        if crc is not None and int(crc) != zlib.crc32(data):
            self._drop()
            raise _Retry(
                EndpointConnectionError(endpoint_url=self.endpoint, error="CRC32 mismatch")
            )
        try:
            answer = json.loads(data) if data else {}
        except ValueError as exc:
            raise _Retry(
                EndpointConnectionError(endpoint_url=self.endpoint, error="unreadable answer")
            ) from exc
        if response.status == 200:
            return answer
        error = client_error(
            operation, response.status, answer, response.getheader("x-amzn-requestid") or ""
        )
        if response.status >= 500 or error.response["Error"]["Code"] in RETRY_CODES:
            raise _Retry(error)
        raise error


_clients: dict[tuple, WireClient] = {}


def wire_client() -> WireClient:
    """The process's client for the settings now (a settings change in tests gets a new one)."""
    return for_settings(_clients, WireClient)
