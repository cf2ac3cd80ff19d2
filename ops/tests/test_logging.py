"""Log lines of the web process and of Celery workers are JSON objects carrying the request
id (and the actor, the task), with secrets masked; the production LOGGING is used."""

import copy
import io
import json
import logging
import time

import pytest
from celery import shared_task
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils.log import configure_logging

from config import settings as production_settings
from config.celery import app
from core import context
from ops.logging import MASK
from tests.factories import UserFactory
from tests.processes import project_run

task_logger = logging.getLogger("ops.tests.logging_task")


@shared_task(name="ops.tests.log_a_line")
def log_a_line() -> None:
    task_logger.warning("inside the task")


def production_logging(stream) -> dict:
    """The production LOGGING (JSON lines), its console handler writing to ``stream``."""
    assert production_settings.LOG_FORMAT == "json"
    config = copy.deepcopy(production_settings.LOGGING)
    config["handlers"]["console"]["stream"] = stream
    return config


@pytest.fixture
def json_logs():
    """Log through the production configuration; the lines written so far, parsed."""
    stream = io.StringIO()
    configure_logging(settings.LOGGING_CONFIG, production_logging(stream))

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    lines.config = production_logging(stream)
    yield lines
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


@pytest.mark.django_db
def test_a_request_logs_one_json_line_with_its_request_id(client, json_logs):
    response = client.get("/health/live", HTTP_X_REQUEST_ID="req-log-test-0001")
    assert response.status_code == 200
    lines = json_logs()
    assert lines, "the request logged nothing"
    (line,) = [line for line in lines if line["logger"] == "backoffice.request"]
    assert line["request_id"] == "req-log-test-0001"
    assert line["message"] == "GET /health/live 200"
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")
    assert (line["view"], line["status"], line["method"]) == ("health:live", 200, "GET")
    assert line["duration_ms"] >= 0
    assert "user_id" not in line


@pytest.mark.django_db
def test_a_signed_in_users_request_names_the_user(client, json_logs):
    user = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    (line,) = [line for line in json_logs() if line["logger"] == "backoffice.request"]
    assert line["user_id"] == user.pk and line["view"] == "admin:index"


@pytest.mark.django_db(transaction=True)
def test_a_celery_tasks_lines_are_json_with_the_enqueuing_requests_id(json_logs, settings):
    # The worker configures logging through the setup_logging receiver of config/celery.py:
    # with the production LOGGING it must keep JSON lines, not put Celery's own format in.
    settings.LOGGING = json_logs.config
    token = context.bind(context.RequestContext(request_id="req-from-the-web-42"))
    try:
        with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
            result = log_a_line.delay()
            deadline = time.monotonic() + 60
            found = []
            while not found and time.monotonic() < deadline:
                time.sleep(0.1)
                found = [line for line in json_logs() if line["message"] == "inside the task"]
    finally:
        context.reset(token)
    (line,) = found
    assert line["request_id"] == "req-from-the-web-42"
    assert line["task_name"] == "ops.tests.log_a_line"
    assert line["task_id"] == result.id
    assert line["level"] == "WARNING" and line["logger"] == "ops.tests.logging_task"


def test_celerys_logging_set_up_keeps_the_json_lines(json_logs, settings):
    # What `celery worker` and `celery beat` do at start; without the setup_logging receiver
    # of config/celery.py Celery would replace the root handler with its own text format.
    settings.LOGGING = json_logs.config
    type(app.log)._setup = False
    app.log.setup(loglevel="INFO")
    logging.getLogger("celery.worker").warning("worker started")
    (line,) = [line for line in json_logs() if line["message"] == "worker started"]
    assert line["logger"] == "celery.worker" and line["request_id"] is None


def test_secrets_never_reach_a_line(json_logs):
    log = logging.getLogger("ops.tests.secrets")
    log.warning("headers: %s", {"HTTP_AUTHORIZATION": "Api-Key bo_live_s3cr3tk3y"})
    log.warning("token Bearer abc.def.ghi; password=hunter2 and 'api_key': 'k-123'")
    log.warning("db at postgres://app:pa55word@db:5432/x", extra={"api_key": "k-456", "n": 3})
    log.warning("a request", extra={"request": object(), "view": "x"})
    try:
        raise ValueError("login failed for password=hunter3")
    except ValueError:
        log.exception("it failed")
    lines = json_logs()
    text = json.dumps(lines)
    for secret in ("s3cr3tk3y", "abc.def.ghi", "hunter2", "hunter3", "k-123", "k-456", "pa55word"):
        assert secret not in text
    assert MASK in lines[0]["message"] and "Api-Key" in lines[0]["message"]
    assert lines[2]["n"] == 3 and "api_key" not in lines[2]
    assert "request" not in lines[3] and lines[3]["view"] == "x"
    assert "ValueError" in lines[4]["exception"] and MASK in lines[4]["exception"]
    assert all(line["request_id"] is None for line in lines)  # no request or task here


def test_gunicorns_own_lines_are_json_too(monkeypatch):
    from gunicorn.config import Config

    from ops.logging import GunicornLogger

    monkeypatch.delenv("LOG_FORMAT", raising=False)
    log = GunicornLogger(Config())
    stream = io.StringIO()
    for handler in log.error_log.handlers:
        handler.setStream(stream)
    log.info("Booting worker with pid: %s", 4242)
    line = json.loads(stream.getvalue())
    assert line["message"] == "Booting worker with pid: 4242"
    assert line["logger"] == "gunicorn.error" and line["level"] == "INFO"


def test_an_unknown_log_format_is_one_clear_error():
    result = project_run(
        "-c",
        "import config.settings",
        env={"LOG_FORMAT": "xml", "DJANGO_DEBUG": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "LOG_FORMAT must be json or text, got 'xml'" in result.stderr
