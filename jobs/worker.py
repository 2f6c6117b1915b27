"""The RQ worker the console runs: RQ's SimpleWorker (jobs run in the worker's own process, so
SSH connections stay warm between runs), stopping promptly.

RQ listens for commands on a pub/sub thread that waits up to 60 s for a message; when the worker
stops, it waits for that thread, so a stop or restart could hang for a minute after the last
job had finished. Here the thread waits at most a second.
"""

from rq.worker import SimpleWorker


class RemoraWorker(SimpleWorker):
    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler
        )
