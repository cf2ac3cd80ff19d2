"""The mandates services, before their split by seam (next commit)."""

from .lifecycle import *  # noqa: F403
