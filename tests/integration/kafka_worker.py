"""A consumer process for the graceful-stop test.

Consumes a topic through the shared BatchConsumer and appends one line per record
(key, seq, partition, offset) to a file before the batch is committed; SIGTERM
stops it gracefully. Usage: python -m tests.integration.kafka_worker TOPIC GROUP OUT
"""

import os
import sys
import time

from captioning_common.events import decode_event
from captioning_common.settings import KafkaSettings
from captioning_common.kafka import BatchConsumer


def main() -> None:
    topic, group, out_path = sys.argv[1:4]
    consumer = BatchConsumer(KafkaSettings(), group, [topic], batch_size=50, batch_timeout_s=0.2)
    consumer.install_signal_handlers()
    with open(out_path, "a") as out:

        def handle(batch):
            for record in batch:
                _, event = decode_event(record.headers(), record.value())
                out.write(f"{record.key().decode()} {event.metadata['seq']} {record.partition()} {record.offset()}\n")
            out.flush()
            os.fsync(out.fileno())
            time.sleep(0.05)  # slow enough to be stopped mid-stream

        consumer.run(handle)
    print("worker stopped cleanly", flush=True)


if __name__ == "__main__":
    main()
