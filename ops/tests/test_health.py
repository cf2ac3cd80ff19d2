import shutil
import socket
import subprocess
import time

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def throwaway_redis(tmp_path):
    """A real Redis server of the test's own, so that the test can stop it."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield proc, f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


def test_live_answers_ok(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_checks_every_store(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok", "dynamodb": "ok"}


def test_ready_names_a_stopped_redis(client, throwaway_redis):
    proc, url = throwaway_redis
    with override_settings(REDIS_URL=url):
        assert client.get("/health/ready").status_code == 200
        proc.terminate()
        proc.wait(timeout=10)
        response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["redis"]
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("down")


def test_ready_names_an_unreachable_dynamodb(client):
    with override_settings(DYNAMODB_ENDPOINT=f"http://127.0.0.1:{_free_port()}"):
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["down"] == ["dynamodb"]


def test_ready_rejects_post(client):
    assert client.post("/health/ready").status_code == 405
