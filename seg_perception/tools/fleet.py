# Copyright 2026 seg_perception developers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Fleet evaluation on Ray: work units (bags) scored by Ray actors, results back to the driver.

``seg-perception evaluate --ray`` hands its bags to :class:`RayFleet`. Each actor
(:class:`UnitWorker`) builds the command's evaluator once (the models load once per worker)
and then scores one unit per call; the driver keeps one unit in flight per worker, so a slow
bag never holds back the others, and collects the results by unit index. The driver merges
them in unit order, which is why the numbers equal the single-process run's bit for bit.

A worker process that dies (killed, out of memory, a lost node) is restarted by Ray
(``max_restarts``) and its unit run again (``max_task_retries``); the driver counts those
retries from the worker's process id changing under a unit. A unit whose worker died more often
than ``--ray-retries`` allows comes back as failed with the reason; the others go on.

Ray is optional (the ``[fleet]`` extra): it is imported only here, only when ``--ray`` is given,
and never by the node.
"""

from collections import deque
from dataclasses import dataclass, field
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from seg_perception.core.errors import BackendError, one_line, UsageError
from seg_perception.tools import pipeline


LOCAL = 'local'  # --ray without a value: a Ray instance started for this run
AUTO = 'auto'  # the cluster of RAY_ADDRESS or the one `ray start` left on this machine
INSTALL_HINT = 'pip install "seg_perception[fleet]" (that is: pip install "ray[data]==2.60.0")'
DEFAULT_RETRIES = 3
CONNECT_TIMEOUT_S = 10.0
WORKER_START_TIMEOUT_S = 600.0  # model loading, and a cluster's autoscaler adding nodes
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024  # results are small: totals and thumbnails
GCS_PORT, CLIENT_PORT = 6379, 10001


def import_ray() -> Any:
    """Return the ray module, or raise one line saying what to install."""
    try:
        import ray
    except ImportError:
        raise BackendError(f'--ray needs Ray, which is not installed: {INSTALL_HINT}') from None
    return ray


@dataclass
class RayOptions:
    """Where and how the units run (the --ray-* options)."""

    address: str = LOCAL
    workers: Optional[int] = None  # None: as many as the cluster's resources allow
    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = DEFAULT_RETRIES
    timeout_s: float = CONNECT_TIMEOUT_S


@dataclass
class Slot:
    """One worker (actor) and the process id it had when a unit was last handed to it."""

    actor: Any
    pid: int
    node: str
    host: str


@dataclass
class RayOutcome:
    """What the workers returned: results by unit index, failures, units cut by Ctrl-C."""

    results: Dict[int, Any] = field(default_factory=dict)
    failed: Dict[int, str] = field(default_factory=dict)
    in_flight: Set[int] = field(default_factory=set)
    info: Dict[str, Any] = field(default_factory=dict)


class UnitWorker:
    """
    The state of one Ray actor: an evaluator built once, then one unit per :meth:`score`.

    ``factory(config)`` builds the evaluator (it loads the models); it must be importable by
    name on every node (a module-level class such as ``evaluate.Evaluator``). An error while
    building is kept and reported by :meth:`ready`, so the driver can print it as one line.
    """

    def __init__(self, factory: Callable[[Any], Any], config: Any) -> None:
        self.error: Optional[str] = None
        self.target: Any = None
        try:
            self.target = factory(config)
        except Exception as error:  # noqa: B902 - reported by ready() as one line
            self.error = one_line(error)

    def ready(self) -> Dict[str, Any]:
        """Return the worker's process, node, host and what its evaluator says about itself."""
        return {'pid': os.getpid(), 'node': _node_id(), 'host': socket.gethostname(),
                'error': self.error,
                'describe': self.target.describe() if self.target is not None else None}

    def score(self, unit: Any) -> Any:
        """Score one unit; the result records this worker's process id and node."""
        result = self.target.score_bag(unit)
        result.worker, result.node = os.getpid(), _node_id()
        return result


def _node_id() -> Optional[str]:
    import ray
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: B902 - only a label in the report
        return None


def split_address(address: str) -> Tuple[str, int]:
    """Return (host, port) of HOST[:PORT] or ray://HOST[:PORT]."""
    client = address.startswith('ray://')
    target = address.split('://', 1)[-1].rstrip('/')
    host, colon, port = target.rpartition(':')
    if not colon:
        return target, CLIENT_PORT if client else GCS_PORT
    try:
        return host.strip('[]'), int(port)
    except ValueError:
        raise UsageError(f'--ray {address}: expected HOST:PORT (e.g. 10.0.0.5:6379), '
                         'ray://HOST:PORT or auto') from None


def check_reachable(address: str, timeout_s: float) -> None:
    """Fail within ``timeout_s`` with one line naming the address if nothing listens there."""
    host, port = split_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        reason = 'timed out' if isinstance(error, socket.timeout) else (
            error.strerror or one_line(error))
        raise BackendError(f'--ray {address}: cannot reach the Ray cluster at {host}:{port} '
                           f'within {timeout_s:g} s ({reason}); start it with `ray start '
                           f'--head --port {port}` there, or check the address') from None


class RayFleet:
    """
    A connection to Ray and a set of workers that score units (use as a context manager).

    Connects on enter (starting a local instance for ``address='local'``; reusing a Ray this
    process already initialized), and on exit kills its actors and disconnects (a local
    instance it started shuts down with it).
    """

    def __init__(self, options: RayOptions) -> None:
        self.options = options
        self.ray: Any = None
        self.connected_here = False
        self.slots: List[Slot] = []
        self.retries = 0

    def __enter__(self) -> 'RayFleet':
        """Connect to Ray."""
        self.connect()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Kill the workers and disconnect."""
        self.close()

    def connect(self) -> None:
        """Join the cluster of options.address, or start a local Ray instance."""
        ray = import_ray()
        address = self.options.address
        self.ray = ray
        if ray.is_initialized():
            return  # a caller (a test, a notebook) already holds a Ray connection
        quiet = {'log_to_driver': False, 'logging_level': logging.WARNING,
                 'namespace': 'seg_perception'}
        if address == LOCAL:
            ray.init(address='local', num_cpus=os.cpu_count() or 1,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False,
                     **quiet)
        else:
            if address != AUTO:
                check_reachable(address, self.options.timeout_s)
            self._join(address, dict(quiet, logging_level=logging.ERROR))
        self.connected_here = True

    def _join(self, address: str, settings: Dict[str, Any]) -> None:
        """
        Connect to a running cluster within options.timeout_s, else raise one line.

        ray.init retries a port that answers but is no Ray GCS for about 20 s; it runs in a
        thread here so that the deadline holds (a thread left behind ends with the process).
        """
        ray = self.ray
        outcome: Dict[str, BaseException] = {}

        def join() -> None:
            try:
                ray.init(address=address, **settings)
            except BaseException as error:  # noqa: B902 - handed to the caller
                outcome['error'] = error

        thread = threading.Thread(target=join, name='ray-connect', daemon=True)
        thread.start()
        thread.join(self.options.timeout_s)
        if thread.is_alive():
            raise BackendError(f'--ray {address}: no Ray cluster answered there within '
                               f'{self.options.timeout_s:g} s (--ray-timeout); check the '
                               'address (the head node prints it at `ray start --head`)')
        error = outcome.get('error')
        if error is not None:
            hint = (' (no running cluster: start one with `ray start --head`, or give '
                    'HOST:PORT)' if address == AUTO else '')
            raise BackendError(f'--ray {address}: cannot connect to the Ray cluster{hint}: '
                               f'{one_line(error)}')

    def worker_count(self, units: int) -> int:
        """Return how many workers to start: --ray-workers, else what the resources allow."""
        options = self.options
        resources = self.ray.cluster_resources()
        cpus, gpus = resources.get('CPU', 0.0), resources.get('GPU', 0.0)
        if options.gpus and gpus < options.gpus:
            raise BackendError(f'--ray-gpus {options.gpus:g}: the Ray cluster has {gpus:g} '
                               'GPUs')
        if options.workers:
            count = options.workers
            needed = count * options.cpus
            if self.options.address == LOCAL and needed > cpus:
                raise BackendError(f'--ray-workers {count} with --ray-cpus {options.cpus:g} '
                                   f'needs {needed:g} CPUs; this machine has {cpus:g} (lower '
                                   '--ray-cpus, e.g. 0.5, to share them)')
        else:
            count = int(cpus // options.cpus) if options.cpus else 1
            if options.gpus:
                count = min(count, int(gpus // options.gpus))
        return max(1, min(count, units))

    def start(self, factory: Callable[[Any], Any], config: Any, units: int
              ) -> List[Dict[str, Any]]:
        """Start the workers (each builds ``factory(config)``); return what each reported."""
        ray = self.ray
        options = self.options
        count = self.worker_count(units)
        remote = ray.remote(UnitWorker).options(
            num_cpus=options.cpus, num_gpus=options.gpus, max_restarts=-1,
            max_task_retries=options.retries)
        actors = [remote.remote(factory, config) for _ in range(count)]
        self.slots = [Slot(actor, 0, '', '') for actor in actors]  # close() kills them
        try:
            infos = ray.get([actor.ready.remote() for actor in actors],
                            timeout=WORKER_START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise BackendError(
                f'{count} Ray workers ({options.cpus:g} CPUs, {options.gpus:g} GPUs each) did '
                f'not start within {WORKER_START_TIMEOUT_S:g} s; the cluster has '
                f'{_resources(ray.cluster_resources())}, free '
                f'{_resources(ray.available_resources())}') from None
        except ray.exceptions.RayError as error:
            raise BackendError(f'a Ray worker could not start: {one_line(error)}') from None
        for info in infos:
            if info['error']:
                raise BackendError(f'Ray worker on {info["host"]}: {info["error"]}')
        for slot, info in zip(self.slots, infos):
            slot.pid, slot.node, slot.host = info['pid'], info['node'], info['host']
        return infos

    def _submit(self, slot: Slot, unit: Any) -> Any:
        """Hand one unit to a worker; return the reference of its result."""
        return slot.actor.score.remote(unit)

    def run(self, units: List[Any], on_result: Optional[Callable[[Any], None]] = None
            ) -> RayOutcome:
        """
        Score every unit, one in flight per worker; Ctrl-C stops and returns what is done.

        ``on_result(result)`` sees each result as it arrives (e.g. to fold its thumbnails into
        the report's strip, so the driver does not keep them per unit). A progress bar counts
        the units with frames/s and the ETA.
        """
        ray = self.ray
        outcome = RayOutcome()
        pending: Deque[Any] = deque(units)
        in_flight: Dict[Any, Tuple[Slot, Any, int]] = {}
        progress = pipeline.UnitProgress(len(units), f'evaluate (ray, {len(self.slots)} '
                                                     'workers)')
        started = time.perf_counter()

        def hand_out(slot: Slot) -> None:
            if pending:
                unit = pending.popleft()
                in_flight[self._submit(slot, unit)] = (slot, unit, slot.pid)

        try:
            for slot in self.slots:
                hand_out(slot)
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                slot, unit, pid = in_flight.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayActorError as error:
                    self.retries += self.options.retries
                    outcome.failed[unit.index] = (
                        f'its worker died {self.options.retries + 1} times while scoring it '
                        f'(--ray-retries {self.options.retries}): {one_line(error, 300)}')
                    progress.advance(0)
                else:
                    if result.worker != pid:  # the worker process died and Ray ran it again
                        self.retries += 1
                        result.attempts = 2
                        slot.pid = result.worker
                    if on_result is not None:
                        on_result(result)
                    outcome.results[unit.index] = result
                    progress.advance(result.evaluated)
                hand_out(slot)
        except KeyboardInterrupt:
            outcome.in_flight = {unit.index for _, unit, _ in in_flight.values()}
        finally:
            progress.close()
        outcome.info = {
            'runner': 'ray',
            'address': self.options.address,
            'workers': len(self.slots),
            'worker_cpus': self.options.cpus,
            'worker_gpus': self.options.gpus,
            'nodes': len({slot.node for slot in self.slots}),
            'retries': self.retries,
            'scoring_s': time.perf_counter() - started,
        }
        return outcome

    def close(self) -> None:
        """Kill the workers; disconnect (shutting down a Ray instance this run started)."""
        ray = self.ray
        if ray is None:
            return
        for slot in self.slots:
            try:
                ray.kill(slot.actor, no_restart=True)
            except Exception:  # noqa: B902 - already dead, or the cluster is gone
                pass
        self.slots = []
        if self.connected_here:
            ray.shutdown()
            self.connected_here = False


def _resources(resources: Dict[str, float]) -> str:
    shown = {k: v for k, v in resources.items() if k in ('CPU', 'GPU')}
    return ', '.join(f'{v:g} {k}' for k, v in sorted(shown.items())) or 'no CPUs'
