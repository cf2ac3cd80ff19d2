"""The server processes the benchmarks start: gunicorn with production settings, and the
CPU its processes used (from ``/proc``, Linux). One way for every script (ingest, load)."""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
# as the server runs: production settings, warnings only
SERVER_ENV = {"DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": HOST, "LOG_LEVEL": "WARNING"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def logs_dir() -> Path:
    logs = ROOT / ".local" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def start_gunicorn(port: int, workers: int, threads: int, *, name: str) -> subprocess.Popen:
    """gunicorn on ``port`` with ``workers`` x ``threads``, once it answers and all its
    workers are up; its errors in ``.local/logs/bench-<name>-web.log``."""
    server = subprocess.Popen(  # noqa: S603 - fixed arguments
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--error-logfile",
            str(logs_dir() / f"bench-{name}-web.log"),
        ],
        env=dict(os.environ, **SERVER_ENV),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(150):
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/health/live")
            if conn.getresponse().status == 200 and len(worker_pids(server.pid)) == workers:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    stop([server])
    raise SystemExit(f"error: gunicorn did not answer on port {port}; see .local/logs/")


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def server_cpu(master: int) -> float:
    """CPU seconds of a gunicorn master and its workers."""
    return sum(cpu_seconds(pid) for pid in [master, *worker_pids(master)])
