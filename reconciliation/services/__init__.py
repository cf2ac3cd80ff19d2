"""The reconciliation services, before their split by seam (next commit)."""

from .build import *  # noqa: F403
