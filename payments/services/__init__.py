"""The payments services, before their split by seam (next commit)."""

from .ingest import *  # noqa: F403
