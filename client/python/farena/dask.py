"""farena.dask: Dask workers that spill to farenad instead of their local disk.

    from dask.distributed import Client, LocalCluster
    import farena.dask

    cluster = LocalCluster(n_workers=4, memory_limit="2GiB",
                           data=(farena.dask.SpillBuffer, {"target": 1 << 30}))

Every worker process then keeps up to ``target`` bytes of task results in
memory (as measured by Dask's sizeof) and spills the least recently used
ones to the user's farenad through a farena.SpillMapping of its own, with
distributed's serialisation. Nothing is written to the workers' local
directories, and a worker that dies (even by SIGKILL) leaves nothing
behind: its connection closes and farenad drops what it held.

SpillBuffer is a subclass of distributed.spill.SpillBuffer (distributed
2022.12, zict 2.2) and behaves as it does: the same spilling policy, the
same handling of values that cannot be pickled, of max_spill and of a full
disk (a failed spill keeps the value in memory and logs an error), and the
same metrics (spilled_total, get_metrics(), fast_metrics, memory, disk).
Only where the spilled bytes go differs.

A spilled value must fit in one farena file (4 GiB - 1 bytes).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal, MutableMapping, Optional, Union

import zict
from distributed.protocol import deserialize_bytes, serialize_bytelist
from distributed.spill import (FastMetrics, Slow, SlowMetrics, SpilledSize,
                               _in_memory_weight, has_zict_220)
from distributed.spill import SpillBuffer as _DistributedSpillBuffer

from . import Error
from .spill import SpillMapping

__all__ = ["SpillBuffer"]


class _FarenaSlow(Slow):
    """distributed.spill.Slow over a SpillMapping instead of zict.File: the
    same serialisation (serialize_bytelist / deserialize_bytes), weights and
    metrics. A farena error while storing is raised as OSError, which
    SpillBuffer treats like a full disk (the value stays in memory)."""

    def __init__(self, mapping: SpillMapping, max_weight: Union[int, Literal[False]] = False):
        zict.Func.__init__(self, partial(serialize_bytelist, on_error="raise"),
                           deserialize_bytes, mapping)
        self.max_weight = max_weight
        self.weight_by_key = {}
        self.total_weight = SpilledSize(0, 0)
        self.metrics = SlowMetrics()

    def __setitem__(self, key: str, value: Any) -> None:
        try:
            super().__setitem__(key, value)
        except Error as e:
            raise OSError("farena: spilling %r failed: %s" % (key, e)) from e


class SpillBuffer(_DistributedSpillBuffer):
    """A drop-in for distributed.spill.SpillBuffer that spills to farenad.

    target: bytes of values (by sizeof) kept in memory before the least
    recently used ones are spilled. max_spill: False, or the most bytes
    (serialised) to spill; beyond it values stay in memory. socket: the
    farenad socket (None: $FARENA_SOCKET, else the default path).
    min_log_interval: seconds between two warnings about failed spills.

    Use it as a worker's data: ``LocalCluster(...,
    data=(farena.dask.SpillBuffer, {"target": T}))``, or
    ``Worker(..., data=(farena.dask.SpillBuffer, {"target": T}))``.
    mapping is the SpillMapping that holds the spilled values (its stats()
    show the space used in farenad). close() releases everything spilled;
    a worker process that exits without it releases it too, as its
    connection closes.
    """

    def __init__(self, target: int, max_spill: Union[int, Literal[False]] = False,
                 socket: Optional[str] = None, min_log_interval: float = 2):
        self.mapping = SpillMapping(socket)
        slow: MutableMapping[str, Any] = _FarenaSlow(self.mapping, max_spill)
        if has_zict_220:
            # As distributed does: a value still referenced on the worker
            # since it was last unspilled is not duplicated.
            slow = zict.Cache(slow, zict.WeakValueMapping())
        zict.Buffer.__init__(self, fast={}, slow=slow, n=target, weight=_in_memory_weight)
        self.last_logged = 0
        self.min_log_interval = min_log_interval
        self.logged_pickle_errors = set()
        self.fast_metrics = FastMetrics()

    def close(self) -> None:
        """Releases everything spilled and closes the farena connection."""
        try:
            super().close()
        finally:
            self.mapping.close()
