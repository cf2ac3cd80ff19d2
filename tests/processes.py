"""A fresh process of the project, for what is decided once, at start-up: the settings
(production mode, the environment's variables) and what the apps register in ready()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def environment(*, drop: tuple[str, ...] = (), **overrides: str) -> dict[str, str]:
    """This process's environment for the project's real settings (``config.settings``):
    without pytest's variables, and without the variables named (or prefixed) in ``drop``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", *drop))}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(overrides)
    return env


def project_run(
    *args: str, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    """``python *args`` in the project's folder: ``project_run("manage.py", "check")`` or
    ``project_run("-c", script)``. ``env`` defaults to :func:`environment`."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
