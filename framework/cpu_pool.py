"""One pool of threads per process for CPU-heavy calls that release the GIL.

Beam's local runner splits a stage's input between its workers once, in
equal parts: when one CPU runs slower (another process, or the other half of
a hyper-threaded core, is busy), its worker finishes last while the other
CPU idles. Worker threads of one process that hand their heavy calls
(Pillow's decode, resize and encode) to a shared pool keep every CPU busy to
the end of the stage: the pool takes calls first come, first served,
whichever worker submitted them.

The threads are daemons, so a finished command never waits for them.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["CpuPool", "cpu_pool"]

_T = TypeVar("_T")
_Call = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]

_lock = threading.Lock()
_pool: CpuPool | None = None


class CpuPool:
    """A fixed number of daemon threads taking submitted calls in the order they came.

    Args:
        threads: How many calls run at once.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        for index in range(threads):
            thread = threading.Thread(target=self._work, name=f"cpu-pool-{index}", daemon=True)
            thread.start()

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Queues ``fn(*args)``; its result (or exception) comes through the future."""
        future: Future[_T] = Future()
        self._calls.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            future, fn, args = self._calls.get()
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # handed to whoever waits on the future
                future.set_exception(error)


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: honours taskset and cgroup pinning
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_pool() -> CpuPool | None:
    """This process's pool, one thread per CPU it may use; None on one CPU (call inline)."""
    global _pool
    cpus = _usable_cpus()
    if cpus < 2:
        return None
    with _lock:
        if _pool is None:
            _pool = CpuPool(cpus)
        return _pool
