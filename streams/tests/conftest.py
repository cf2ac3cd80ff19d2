import pytest

from streams.models import ShardLease
from streams.processor import StreamProcessor
from streams.sources import TRANSACTIONS


@pytest.fixture
def at_tip():
    """The stream read to its end with nothing applied, so a test sees its own records."""
    StreamProcessor(TRANSACTIONS, apply=lambda records: None).run(until_idle=True)
    ShardLease.objects.update(records_applied=0)
