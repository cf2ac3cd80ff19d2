"""Configuration faults and production mode, checked through manage.py as an operator runs it."""

import secrets
import socket
import subprocess

from tests.processes import environment, project_run


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return project_run("manage.py", *args, env=environment(**env))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_check_deploy_reports_nothing_in_production_mode():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        DJANGO_ALLOWED_HOSTS="backoffice.example",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_mode_refuses_a_missing_secret_key():
    result = _manage("check", DJANGO_DEBUG="0", DJANGO_SECRET_KEY="")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off"


def test_malformed_database_url_is_one_line_naming_the_variable():
    result = _manage("check", DATABASE_URL="postgres//nohost")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: DATABASE_URL is malformed")


def test_malformed_redis_url_is_one_line_naming_the_variable():
    result = _manage("check", REDIS_URL="redis://127.0.0.1:notaport/0")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: REDIS_URL is malformed")


def test_unreachable_postgres_is_one_line():
    result = _manage(
        "migrate",
        "--check",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{_closed_port()}/backoffice",
        DATABASE_POOL_TIMEOUT="1",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: PostgreSQL is unreachable (DATABASE_URL=")


def test_unreachable_dynamodb_is_one_line():
    result = _manage(
        "ddb_tables",
        "describe",
        DYNAMODB_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        DYNAMODB_MAX_RETRIES="0",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: DynamoDB is unreachable (DYNAMODB_ENDPOINT)")
