"""One thread that runs every model call in turn, so the single loaded model is never used concurrently.

A bounded number of jobs may wait; beyond it :meth:`EditWorker.submit` refuses at once instead of
queueing without end. The event loop only awaits the job's future, so ``/api/health`` stays answered
while an edit runs.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional, Tuple


class WorkerBusy(Exception):
    """Too many jobs are already waiting."""


class EditWorker:
    """A daemon thread executing submitted callables one at a time, at most ``max_pending`` queued or running."""

    def __init__(self, max_pending: int = 16) -> None:
        self.max_pending = max_pending
        self._jobs: queue.Queue[Optional[Tuple[Callable[[], Any], Future]]] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="siedob-studio-worker", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return self._pending

    def submit(self, fn: Callable[[], Any]) -> Future:
        """Queue ``fn``; raises :class:`WorkerBusy` when ``max_pending`` jobs are already there."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise WorkerBusy(f"{self._pending} edits are already waiting (the limit is {self.max_pending})")
            self._pending += 1
        future: Future = Future()
        self._jobs.put((fn, future))
        return future

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:  # handed to the awaiting request
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self._pending -= 1

    def stop(self, timeout: float = 10.0) -> None:
        """Let the running job finish, cancel the queued ones and end the thread."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[1].cancel()
                with self._lock:
                    self._pending -= 1
        self._jobs.put(None)
        self._thread.join(timeout)
