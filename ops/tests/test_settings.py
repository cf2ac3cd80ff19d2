"""Settings the code reads are defined in config/settings.py from the environment, each with
its default (no ``getattr(settings, "X", default)`` anywhere): read by a fresh process as
an operator's environment gives them."""

import json
import subprocess

import pytest

from tests.processes import environment, project_run

READ = (
    "TRUST_X_FORWARDED_FOR",
    "REPORTING_DATABASE",
    "AUDIT_RETENTION_DAYS",
    "OUTBOX_DELIVER_ON_COMMIT",
    "SESSIONS_DDB_CACHE_SECONDS",
)


def _settings_with(**env: str) -> subprocess.CompletedProcess:
    script = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{name: getattr(s, name) for name in {READ!r}}}))"
    )
    unset = (*READ, "DATABASE_REPLICA_URL")
    return project_run("-c", script, env=environment(drop=unset, **env), timeout=60)


def test_each_setting_has_its_default_without_the_environment():
    result = _settings_with()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "TRUST_X_FORWARDED_FOR": False,
        "REPORTING_DATABASE": "default",
        "AUDIT_RETENTION_DAYS": 2555,
        "OUTBOX_DELIVER_ON_COMMIT": True,
        "SESSIONS_DDB_CACHE_SECONDS": 300,
    }


def test_each_setting_is_read_from_the_environment():
    result = _settings_with(
        TRUST_X_FORWARDED_FOR="true",
        DATABASE_REPLICA_URL="postgres://reader@replica.internal:5432/backoffice",
        REPORTING_DATABASE="default",
        AUDIT_RETENTION_DAYS="400",
        OUTBOX_DELIVER_ON_COMMIT="off",
        SESSIONS_DDB_CACHE_SECONDS="0",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "TRUST_X_FORWARDED_FOR": True,
        "REPORTING_DATABASE": "default",  # a replica, and reports kept on the primary
        "AUDIT_RETENTION_DAYS": 400,
        "OUTBOX_DELIVER_ON_COMMIT": False,
        "SESSIONS_DDB_CACHE_SECONDS": 0,
    }


def test_reports_read_the_replica_when_there_is_one():
    result = _settings_with(DATABASE_REPLICA_URL="postgres://reader@replica.internal/backoffice")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["REPORTING_DATABASE"] == "replica"


def test_a_reporting_database_that_is_not_configured_is_refused():
    result = _settings_with(REPORTING_DATABASE="replica")  # no DATABASE_REPLICA_URL
    assert result.returncode != 0
    assert "REPORTING_DATABASE must be one of default, got 'replica'" in result.stderr


@pytest.mark.parametrize(("trusted", "expected"), [(False, "10.0.0.5"), (True, "203.0.113.7")])
def test_the_client_ip_is_the_forwarded_one_only_when_trusted(rf, settings, trusted, expected):
    from ops.middleware import client_ip

    settings.TRUST_X_FORWARDED_FOR = trusted
    request = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.7, 10.0.0.1", REMOTE_ADDR="10.0.0.5")
    assert client_ip(request) == expected
