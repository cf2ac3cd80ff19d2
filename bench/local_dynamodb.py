"""A benchmark's own DynamoDB Local that keeps its data in memory (``bin/services``).

DynamoDB Local on disk (SQLite) writes about 130 items a second on this kind of machine;
in memory about ten times faster. It stays running for the next run; stop it with
``LOCAL_SERVICES_DIR=<folder> LOCAL_DYNAMODB_PORT=<port> bin/services stop dynamodb``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_in_memory(*, port: str, folder: str = ".local/bench", heap: str = "6g") -> str:
    """Start it (or find it running) on ``port``; its endpoint."""
    env = dict(
        os.environ,
        LOCAL_SERVICES_DIR=folder,
        LOCAL_DYNAMODB_PORT=port,
        LOCAL_DYNAMODB_IN_MEMORY="1",
        LOCAL_DYNAMODB_HEAP=heap,
    )
    env.pop("DYNAMODB_ENDPOINT", None)
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [str(ROOT / "bin" / "services"), "start", "dynamodb"], env=env, text=True
    )
    if result.returncode:
        raise SystemExit("error: could not start the benchmark's DynamoDB Local")
    return f"http://127.0.0.1:{port}"
