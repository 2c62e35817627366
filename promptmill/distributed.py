"""Executors: where an evaluation's model calls run, in this process or across a Ray cluster.

The evaluator keeps everything that touches the store (rendering, the cache, scoring, writes in
example order) and the policy for failures; an executor only turns a list of uncached
``(request, params)`` work items into :class:`~promptmill.attempts.Attempt` values, in the same
order, with the one shared retry function. So a distributed run writes exactly what a local run
writes, and calls already in the cache never leave the driver.

``RayExecutor`` runs one actor per worker; each actor loads its own copy of the model once and
answers chunks of requests. When an actor dies mid-run, its unfinished chunks go back on the
queue and the surviving actors (or a replacement) answer them, so nothing is lost; results are
collected per chunk and handed over in order, so nothing is duplicated.
"""

from __future__ import annotations

import math
import socket
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .attempts import Attempt, WorkItem, call_with_retries
from .errors import ConfigError, ModelError, require

if TYPE_CHECKING:
    from .models.base import Model

# llama.cpp backends get one thread per CPU a worker reserves: the default (all cores) in every
# worker would oversubscribe the machine and make N workers slower than one
_THREADED_BACKENDS = ("embedded", "gguf")
CONNECT_TIMEOUT = 5.0
START_TIMEOUT = 120.0


class Executor:
    """Answers a list of work items, in order: one :class:`Attempt` per item."""

    name = "executor"

    def generate(self, model: Model, work: Sequence[WorkItem],
                 retries: int) -> Iterator[Attempt]:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook; the local executor holds nothing
        """Release workers and connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """In this process: one call at a time, or a thread pool for backends that allow it."""

    name = "local"

    def generate(self, model: Model, work: Sequence[WorkItem],
                 retries: int) -> Iterator[Attempt]:
        def one(item: WorkItem) -> Attempt:
            return call_with_retries(model, item[0], item[1], retries)

        if model.concurrency > 1 and len(work) > 1:  # an HTTP backend: keep it busy
            with ThreadPoolExecutor(max_workers=model.concurrency) as pool:
                yield from pool.map(one, work)
            return
        for item in work:
            yield one(item)


class _Worker:
    """The body of a Ray actor: one model, loaded once, answering chunks of requests."""

    def __init__(self, spec: str, params: dict[str, Any]):
        import os

        from .models.registry import load_model

        self.model = load_model(spec, **params)
        self.pid = os.getpid()
        self.calls = 0

    def info(self) -> dict[str, Any]:
        import ray

        return {"identity": self.model.identity, "pid": self.pid, "calls": self.calls,
                "node": ray.get_runtime_context().get_node_id()}

    def generate_chunk(self, work: list[WorkItem], retries: int) -> list[Attempt]:
        self.calls += len(work)
        return list(LocalExecutor().generate(self.model, work, retries))


class RayExecutor(Executor):
    """Spreads model calls over Ray actors, one model per actor.

    ``address`` is None for a local Ray instance (or the cluster in ``RAY_ADDRESS``), else a
    cluster's ``HOST:PORT`` as printed by ``ray start --head``. ``workers`` defaults to the
    cluster's CPUs divided by ``cpus_per_worker``. ``on_chunk`` is called on the driver after
    each finished chunk (progress, or tests that kill a worker mid-run).
    """

    name = "ray"

    def __init__(self, spec: str, params: dict[str, Any] | None = None, *,
                 address: str | None = None, workers: int | None = None,
                 cpus_per_worker: float = 1, chunk_size: int = 8, in_flight: int = 2,
                 max_replacements: int = 3,
                 on_chunk: Callable[[RayExecutor, int], None] | None = None):
        self.spec, self.address = spec, address
        self.params = dict(params or {})
        if spec.partition(":")[0] in _THREADED_BACKENDS:
            self.params.setdefault("n_threads", max(1, math.floor(cpus_per_worker)))
        self.workers, self.cpus_per_worker = workers, cpus_per_worker
        self.chunk_size, self.in_flight = max(1, chunk_size), max(1, in_flight)
        self.max_replacements = max_replacements
        self.on_chunk = on_chunk
        self.actors: list[Any] = []
        self.rescheduled = 0  # chunks sent again because their worker died
        self.replacements = 0
        self._ray: ModuleType | None = None  # set by start(), cleared by close()
        self._started_ray = False

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def _connected(self) -> ModuleType:
        """The Ray module this executor joined; only start() leaves it set."""
        if self._ray is None:
            raise ModelError("the Ray executor is not connected", where=f"--executor "
                             f"{self.describe()}", fix="call start() before using it")
        return self._ray

    def start(self, identity: str | None = None) -> RayExecutor:
        """Connect and start the actors; check they run the same model as the driver."""
        if self.actors:
            return self
        ray = require("ray", "ray", "distributed evaluation")
        self._started_ray = not ray.is_initialized()
        self._ray = connect(self.address)
        n = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)
                                       // self.cpus_per_worker))
        self.actors = [self._spawn() for _ in range(n)]
        infos = self._ready(self.actors)
        if identity is not None and any(i["identity"] != identity for i in infos):
            found = sorted({i["identity"] for i in infos})
            self.close()
            raise ConfigError(f"Ray workers loaded model {', '.join(found)} but this run uses "
                              f"{identity}", where=f"--executor ray (model '{self.spec}')",
                              fix="install the same model file on every node")
        return self

    def _ready(self, actors: list) -> list[dict[str, Any]]:
        """Wait until the actors have loaded their model; explain why when they cannot."""
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            return self._connected.get([a.info.remote() for a in actors],
                                       timeout=START_TIMEOUT)
        except GetTimeoutError:
            self.close()
            raise ModelError(f"{len(actors)} Ray worker(s) with {self.cpus_per_worker} CPU each "
                             f"did not start within {START_TIMEOUT:.0f}s",
                             where=f"--executor {self.describe()}",
                             fix="add nodes, or ask for fewer workers") from None
        except RayActorError as exc:
            self.close()
            cause = " ".join(str(exc).split())[-300:]
            raise ModelError(f"a Ray worker could not load model '{self.spec}' ({cause})",
                             where=f"--executor {self.describe()}",
                             fix="install promptmill and the model on every node") from None

    def _spawn(self):
        ray = self._connected
        remote = ray.remote(num_cpus=self.cpus_per_worker, max_restarts=0)(_Worker)
        return remote.remote(self.spec, self.params)

    def worker_info(self) -> list[dict[str, Any]]:
        """Each live actor's model identity, process id, node and calls answered so far."""
        if not self.actors:
            return []
        return self._connected.get([a.info.remote() for a in self.actors])

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self._started_ray:
            ray.shutdown()
        self._ray = None

    # --- the work -------------------------------------------------------------------------
    def generate(self, model: Model, work: Sequence[WorkItem],
                 retries: int) -> Iterator[Attempt]:
        if not work:
            return
        self.start(model.identity)
        size = min(self.chunk_size, max(1, math.ceil(len(work) / (2 * len(self.actors)))))
        chunks = [list(work[i:i + size]) for i in range(0, len(work), size)]
        done: dict[int, list[Attempt]] = {}
        emitted = 0
        for index, attempts in self._answers(chunks, retries):
            done[index] = attempts
            while emitted in done:  # hand results over in example order
                yield from done.pop(emitted)
                emitted += 1

    def _answers(self, chunks: list[list[WorkItem]],
                 retries: int) -> Iterator[tuple[int, list[Attempt]]]:
        """(chunk index, outcomes) as chunks finish; a dead worker's chunks are sent again."""
        ray = self._connected
        from ray.exceptions import RayActorError

        queue = deque(range(len(chunks)))
        running: dict[Any, tuple[int, Any]] = {}  # object ref -> (chunk index, actor)
        while queue or running:
            self._fill(queue, running, chunks, retries)
            ready, _ = ray.wait(list(running), num_returns=1)
            index, actor = running.pop(ready[0])
            try:
                outcomes = ray.get(ready[0])
            except RayActorError:
                self._lose(actor, index, queue, running)
                continue
            yield index, outcomes
            if self.on_chunk is not None:
                self.on_chunk(self, index)

    def _fill(self, queue: deque, running: dict, chunks: list, retries: int) -> None:
        load = {id(a): 0 for a in self.actors}
        for _, actor in running.values():
            load[id(actor)] = load.get(id(actor), 0) + 1
        for actor in self.actors:
            while queue and load[id(actor)] < self.in_flight:
                index = queue.popleft()
                running[actor.generate_chunk.remote(chunks[index], retries)] = (index, actor)
                load[id(actor)] += 1

    def _lose(self, actor, index: int, queue: deque, running: dict) -> None:
        """A worker died: requeue its chunk, and everything else it held, at the front."""
        held = [ref for ref, (_, owner) in running.items() if owner is actor]
        lost = [index] + [running.pop(ref)[0] for ref in held]
        self.rescheduled += len(lost)
        queue.extendleft(sorted(lost, reverse=True))
        self.actors = [a for a in self.actors if a is not actor]
        if self.actors:
            return
        if self.replacements >= self.max_replacements:
            raise ModelError(f"every Ray worker died ({self.replacements} replaced already)",
                             where=f"--executor {self.describe()}",
                             fix="check the workers' logs (out of memory?), then rerun: "
                                 "finished examples are kept and the run resumes")
        self.replacements += 1
        self.actors = [self._spawn()]
        self._ready(self.actors)  # a replacement with nowhere to run fails clearly, not hangs

    def describe(self) -> str:
        return f"ray://{self.address}" if self.address else "ray"


def connect(address: str | None):
    """Ray, initialised for this process: a local instance, or the cluster at ``address``."""
    ray = require("ray", "ray", "distributed evaluation")
    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if address is None or _same_address(current, address):
            return ray
        ray.shutdown()  # one cluster per process: switch to the one asked for
    import logging

    kwargs: dict[str, Any] = dict(logging_level=logging.ERROR, log_to_driver=False,
                                  configure_logging=False)
    try:
        if address is None:
            ray.init(include_dashboard=False, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises several types for one problem
        raise ModelError(f"cannot join the Ray cluster at {address or 'local'} "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
                         where="--executor", fix=_CLUSTER_FIX) from None
    return ray


_CLUSTER_FIX = ("start one with 'ray start --head --port=PORT' and pass "
                "--executor ray://HOST:PORT, or use --executor ray for a local instance")


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at the address."""
    _check_address(address)
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise ModelError(f"the Ray cluster at {address} is unreachable ({exc.strerror or exc})",
                         where="--executor", fix=_CLUSTER_FIX) from None


def _same_address(a: str, b: str) -> bool:
    def norm(x: str) -> str:
        host, _, port = x.rpartition(":")
        return f"{'127.0.0.1' if host in ('localhost', '') else host}:{port}"

    return norm(a) == norm(b)


def make_executor(choice: str | None, spec: str, params: dict[str, Any] | None = None,
                  **options: Any) -> Executor:
    """``local`` (or None), ``ray`` or ``ray://HOST:PORT``, as the CLI's ``--executor``."""
    if choice in (None, "", "local"):
        return LocalExecutor()
    if choice == "ray":
        return RayExecutor(spec, params, **options)
    if choice.startswith("ray://"):
        address = choice.removeprefix("ray://").rstrip("/")
        _check_address(address)
        return RayExecutor(spec, params, address=address, **options)
    raise ConfigError(f"unknown executor '{choice}'", where="--executor",
                      fix="use local, ray, or ray://HOST:PORT")


def _check_address(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"bad Ray address '{address}'", where="--executor",
                          fix="write ray://HOST:PORT, e.g. ray://127.0.0.1:6379")


__all__ = ["Executor", "LocalExecutor", "RayExecutor", "connect", "make_executor"]
