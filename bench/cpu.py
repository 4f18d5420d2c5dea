"""CPU time per process of the mesh, to see which one a figure is waiting on.

On a machine with few cores the server, the workers and the bench's own
client compete for them; CPU seconds per process over a phase (and per turn)
say which one saturates first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import psutil


class CpuMeter:
    def __init__(self, pids: Mapping[str, int]) -> None:
        self._processes: dict[str, psutil.Process] = {}
        for name, pid in pids.items():
            try:
                self._processes[name] = psutil.Process(pid)
            except psutil.Error:
                continue  # exited already: nothing to measure

    @classmethod
    def of(cls, server_pid: int, workers: Mapping[str, int]) -> CpuMeter:
        # "bench" is this process: the client driving the load.
        return cls({"server": server_pid, **workers, "bench": os.getpid()})

    def snapshot(self) -> dict[str, float]:
        """User + system CPU seconds used so far, per process."""
        used: dict[str, float] = {}
        for name, process in self._processes.items():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            used[name] = times.user + times.system
        return used


def spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each process used between two snapshots."""
    return {name: round(after[name] - before.get(name, 0.0), 3) for name in after}
