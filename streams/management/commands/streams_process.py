import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from streams.processor import POSITIONS, StreamProcessor
from streams.sources import SOURCES


class Command(BaseCommand):
    help = (
        "Read a DynamoDB stream and keep PostgreSQL current from it (the transactions' "
        "stream: today's DCR figures), until stopped (SIGTERM, Ctrl-C). See docs/streams.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=sorted(SOURCES), default="transactions")
        parser.add_argument(
            "--until-idle", action="store_true", help="stop after a pass that reads nothing"
        )
        parser.add_argument("--batch-size", type=int, help="records a read (1 to 1000)")
        parser.add_argument("--initial-position", choices=POSITIONS)

    def handle(self, *args, source, until_idle, batch_size, initial_position, **options):
        if batch_size is not None and not 1 <= batch_size <= 1000:
            raise CommandError("--batch-size: between 1 and 1000")
        processor = StreamProcessor(
            SOURCES[source], batch_size=batch_size, initial_position=initial_position
        )
        stop = threading.Event()
        previous = {
            signum: signal.signal(signum, lambda *_: stop.set())
            for signum in (signal.SIGTERM, signal.SIGINT)
        }  # a stop finishes the batch in hand and gives the leases up
        self.stdout.write(f"stream {source}: processor {processor.owner} started")
        try:
            applied = processor.run(stop=stop, until_idle=until_idle)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(f"stream {source}: {applied} record(s) applied, stopped")
