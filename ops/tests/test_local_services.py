"""bin/services as root in a checkout that the postgres user cannot reach (a clone under
/root, any mode-700 folder): PostgreSQL still starts there, answers, and stops, its cluster
owned by postgres in a folder it can reach. Each test copies bin/services into a folder of
its own and runs it on a free port, beside (never touching) the running services."""

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

BIN_SERVICES = Path(__file__).resolve().parents[2] / "bin" / "services"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root runs PostgreSQL as the postgres user (CI runs as root)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _postgres_reaches(path: Path) -> bool:
    return (
        subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(path)]).returncode == 0
    )


class Checkout:
    """A copy of bin/services in ``folder``, with the PostgreSQL port ``port``."""

    def __init__(self, folder: Path) -> None:
        self.root = folder / "backoffice"
        (self.root / "bin").mkdir(parents=True)
        shutil.copy2(BIN_SERVICES, self.root / "bin" / "services")
        self.port = _free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LOCAL_")},
            "LOCAL_PG_PORT": str(self.port),
        }
        for name in ("DATABASE_URL", "REDIS_URL", "DYNAMODB_ENDPOINT"):
            self.env.pop(name, None)

    def services(self, action: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(self.root / "bin" / "services"), action, "postgres"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    @property
    def data(self) -> Path:
        return (self.root / ".local" / "postgres").resolve()

    def remove(self) -> None:
        self.services("stop")
        link = self.root / ".local" / "postgres"
        if link.is_symlink():
            shutil.rmtree(link.resolve().parent, ignore_errors=True)


@pytest.fixture
def private_checkout(tmp_path):
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    checkout = Checkout(private)
    yield checkout
    checkout.remove()


@pytest.fixture
def open_checkout():
    folder = Path(tempfile.mkdtemp(prefix="backoffice-"))
    folder.chmod(0o755)
    checkout = Checkout(folder)
    yield checkout
    checkout.remove()
    shutil.rmtree(folder, ignore_errors=True)


def _connect(checkout: Checkout):
    return psycopg.connect(
        host="127.0.0.1",
        port=checkout.port,
        user="postgres",
        dbname="backoffice",
        connect_timeout=5,
    )


def test_postgres_starts_as_root_in_a_folder_the_postgres_user_cannot_reach(private_checkout):
    checkout = private_checkout
    assert not _postgres_reaches(checkout.root)  # the situation of a clone under /root

    started = checkout.services("start")
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout
    data = checkout.data
    assert not data.is_relative_to(checkout.root)  # where postgres can reach it...
    assert _postgres_reaches(data)
    assert data.stat().st_uid == pwd.getpwnam("postgres").pw_uid  # ...and owned by it
    with _connect(checkout) as conn:
        assert conn.execute("SHOW data_directory").fetchone()[0] == str(data)
        conn.execute("CREATE TABLE kept (n int)")

    status = checkout.services("status")
    assert f"running on 127.0.0.1:{checkout.port}, data in {data}" in status.stdout
    assert "already running" in checkout.services("start").stdout

    stopped = checkout.services("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert not _port_open(checkout.port)
    assert "stopped on" in checkout.services("status").stdout

    # started again, the checkout finds the same cluster
    assert checkout.services("start").returncode == 0
    assert checkout.data == data
    with _connect(checkout) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)


def test_each_checkout_gets_a_cluster_of_its_own(tmp_path):
    first_home, second_home = tmp_path / "a", tmp_path / "b"
    first_home.mkdir(mode=0o700)
    second_home.mkdir(mode=0o700)
    first, second = Checkout(first_home), Checkout(second_home)
    try:
        for checkout in (first, second):
            result = checkout.services("start")
            assert result.returncode == 0, result.stderr
        assert first.data != second.data
    finally:
        first.remove()
        second.remove()


def test_a_checkout_postgres_can_reach_keeps_its_cluster_in_it(open_checkout):
    started = open_checkout.services("start")
    assert started.returncode == 0, started.stderr
    link = open_checkout.root / ".local" / "postgres"
    assert not link.is_symlink() and (link / "PG_VERSION").exists()
    with _connect(open_checkout) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
