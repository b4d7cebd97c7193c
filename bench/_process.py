"""Runs a command as a child process and measures its whole process tree.

Beam's ``multi_processing`` workers are child processes of the pipeline's
process, so the peak memory of a run is the peak of the *sum* over the tree,
not the largest single process (which is what ``ru_maxrss`` reports). The tree
is polled every `POLL_SECONDS` through ``/proc``; each poll sums ``VmRSS``
(resident set: counts a page shared by two processes twice, so an upper
bound) and ``Pss`` from ``smaps_rollup`` (proportional set: a shared page is
split between its users, so the sum is the tree's physical footprint).
CPU time comes from ``wait4``: user + system of the child and every
descendant it waited for. ``/proc/stat`` gives the CPU time the whole machine
was busy meanwhile: the difference is what other processes took, which says
whether a figure was measured on a contended machine.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import attrs

__all__ = ["POLL_SECONDS", "TreeRun", "machine_busy_s", "run_tree"]

POLL_SECONDS = 0.2
_KIB = 1024


@attrs.frozen
class TreeRun:
    """What one measured run of a command took.

    Attributes:
        returncode: The command's exit status.
        wall_s: Wall-clock seconds from start to exit.
        cpu_s: User + system CPU seconds of the whole tree.
        peak_rss_bytes: Peak over polls of the tree's summed RSS.
        peak_pss_bytes: Peak over polls of the tree's summed PSS.
        max_processes: Most processes seen in the tree at once.
        largest_process_rss_bytes: Peak over polls of the largest single
            process's RSS. (Not ``ru_maxrss``: a child forked from a bench
            process that holds TensorFlow starts with that process's RSS.)
        others_cpu_s: CPU seconds other processes used meanwhile (machine
            busy time minus ``cpu_s``; 0 on a quiet machine).
        stdout: What the command printed on stdout (stderr goes to a log file).
    """

    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    peak_pss_bytes: int
    max_processes: int
    largest_process_rss_bytes: int
    others_cpu_s: float
    stdout: str

    @property
    def others_cores(self) -> float:
        """How many CPUs other processes kept busy, on average, during the run."""
        return self.others_cpu_s / self.wall_s


def machine_busy_s() -> float:
    """CPU seconds the machine spent busy since boot (steal included: time the VM lost)."""
    with open("/proc/stat", "rb") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (2nd field) is in parentheses and may hold spaces.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _tree(root: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; zeros if it has gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * _KIB
                    break
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1]) * _KIB
                    break
    except (OSError, ValueError, IndexError):
        return 0, 0
    return rss, pss


class _Poller(threading.Thread):
    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self._root = root
        self._done = threading.Event()
        self.peak_rss = self.peak_pss = self.max_processes = self.largest_rss = 0

    def run(self) -> None:
        while not self._done.is_set():
            pids = _tree(self._root)
            rss = pss = 0
            for pid in pids:
                r, p = _memory(pid)
                rss, pss = rss + r, pss + p
                self.largest_rss = max(self.largest_rss, r)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.max_processes = max(self.max_processes, len(pids))
            self._done.wait(POLL_SECONDS)

    def stop(self) -> None:
        self._done.set()
        self.join()


def run_tree(
    command: Sequence[str],
    *,
    log: Path,
    cpus: Collection[int] | None = None,
    env: Mapping[str, str] | None = None,
) -> TreeRun:
    """Runs ``command`` to its end and measures it.

    Args:
        command: The program and its arguments.
        log: File that receives the command's stderr.
        cpus: Pin the command (and so all its descendants) to these CPUs.
        env: Extra environment variables.

    Returns:
        The measurements. A non-zero exit status is returned, not raised.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as err:
        busy_start = machine_busy_s()
        start = time.perf_counter()
        child = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, **(env or {})},
        )
        if cpus is not None:
            # Right after exec, before the interpreter has started any thread.
            os.sched_setaffinity(child.pid, set(cpus))
        poller = _Poller(child.pid)
        poller.start()
        assert child.stdout is not None
        stdout = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        busy = machine_busy_s() - busy_start
        poller.stop()
        child.returncode = os.waitstatus_to_exitcode(status)
        child.stdout.close()
    cpu = usage.ru_utime + usage.ru_stime
    return TreeRun(
        returncode=child.returncode,
        wall_s=wall,
        cpu_s=cpu,
        peak_rss_bytes=poller.peak_rss,
        peak_pss_bytes=poller.peak_pss,
        max_processes=poller.max_processes,
        largest_process_rss_bytes=poller.largest_rss,
        others_cpu_s=max(busy - cpu, 0.0),
        stdout=stdout.decode("utf-8", "replace"),
    )
