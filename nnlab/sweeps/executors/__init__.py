"""Where a sweep's jobs run. An executor takes tasks and reports their outcomes; the sweep driver
(nnlab.sweeps.driver) owns the state, the retries and the summary, so a new executor (a cluster,
say) only has to move tasks and outcomes (docs/sweeps.md, 'Workers').

:mod:`~nnlab.sweeps.executors.base` holds the contract, :mod:`~nnlab.sweeps.executors.local`
the worker processes of this machine, :mod:`~nnlab.sweeps.executors.ray` a Ray cluster.
"""

from nnlab.sweeps.executors.base import Executor, Outcome, Task, capped, run_task
from nnlab.sweeps.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "Outcome", "Task", "capped", "run_task"]
