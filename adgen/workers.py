"""More GPUs, more machines: the engine interface over Ray actors, one `Engine` each (`--workers N`).

The front end (one process: the page, the API, the CLI) keeps what is shared: the queue, history,
the result cache (checked before dispatch, so a hit never reaches a worker; results stored when they
come back) and an ad's CPU steps. Each job's model work goes to a free worker: a Ray actor owning one
`Engine` (one pipeline, its LoRAs, its prompt-embedding cache) that asks Ray for one GPU on a CUDA
cluster (one CPU otherwise). Progress per step and Stop reach the worker running the job. A worker that
dies is restarted by Ray (`max_restarts=-1`); the job it held fails with a clear `WorkerError` (not
retried: a request that kills a worker would kill a second one), the others go on.

Keys are planned here exactly as in-process (`engine.plan_images` with the workers' `ModelInfo`), and a
worker re-plans each job and refuses one whose keys differ (another model, dtype or library version),
so a cached image is always the image that worker would make. Ray is imported only by this module,
which only `--workers` / `--ray-address` import.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import ray
import torch

from . import cluster
from .cache import ResultCache
from .engine import ImagePlan, ModelInfo, Progress, Result, plan_images
from .errors import AdgenError, GenerationStopped, ModelError, WorkerError, first_line
from .jobs import Job, Jobs
from .presets import StylePreset, get_preset, load_presets
from .request import AdRequest, check_int

log = logging.getLogger("adgen.workers")
POLL = 0.05  # seconds between looks at a running job: its progress, and a Stop to pass on
REFRESH = 1.0  # seconds between the panel's looks at each worker
UP = ("ready", "loading", "unloaded")  # states of a worker that has answered: placed, its process up
STOP_GRACE = 10.0  # seconds a stopped job's worker has to end it before the front end lets the job go
MAX_WORKERS = 64
ROOT = Path(__file__).resolve().parent.parent  # the checkout: workers started here import adgen from it


@dataclass(frozen=True)
class WorkerConfig:
    """How each worker makes its `Engine` (the CLI's and the app's runtime flags)."""

    model: str | None = None
    memory: str | None = None
    attention: str | None = None
    dtype: str | None = None
    compile: bool = False
    device: str | None = None  # None: cuda where the worker has a GPU
    quantize: str | None = None  # checked by the front end (`settings.make_engine`)


class Mismatch(WorkerError):
    """A worker plans other cache keys than the front end: a changed LoRA file, or another model or numerics."""


@dataclass(frozen=True)
class Outcome:
    """A worker's answer: the value, or the AdGen error to raise as itself, and the job's last progress."""

    value: object = None
    error: AdgenError | None = None
    progress: tuple[int, int] | None = None


class EngineWorker:
    """One worker: a Ray actor (threaded, so progress, Stop and the panel are answered while a job runs)."""

    def __init__(self, index: int, config: WorkerConfig, presets: dict[str, StylePreset]):
        self.index, self.config, self.error = index, config, ""
        self.engine = None
        self._jobs: dict[str, Job] = {}
        self._early: dict[str, str] = {}  # Stops that arrived before their job
        self._progress: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        try:
            from .engine import Engine
            from .models import quiet_libraries

            quiet_libraries()
            self.engine = Engine(config.model, cache=None, presets=presets, device=config.device,
                                 memory=config.memory, attention=config.attention, dtype=config.dtype,
                                 compile=config.compile, quantize=config.quantize)
            self.engine.load_in_background()
        except Exception as exc:  # noqa: BLE001 - shown in the panel; the worker stays up to say so
            log.exception("worker %d cannot start its engine", index)
            self.error = first_line(exc)

    def describe(self) -> dict:
        """State, device and memory for the panel (never waits for the engine)."""
        from .monitor import snapshot

        base = {"index": self.index, "host": socket.gethostname(), "pid": os.getpid()}
        if self.engine is None:
            return {**base, "state": "error", "error": self.error, "device": self.config.device or "?"}
        snap = snapshot(self.engine.device)
        return {**base, **self.engine.describe(), "gpu": snap.gpu_name if snap.device == "cuda" else "",
                "used": snap.used if snap.device == "cuda" else snap.rss,
                "total": snap.total if snap.device == "cuda" else snap.ram_total,
                "runs": self.engine.runs, "writes": self.engine.writes}

    def info(self) -> Outcome:
        """The model as a cache key sees it, once loaded (a faster attention may fall back at the load)."""
        try:
            engine = self._engine()
            engine.load()
            return Outcome(engine.info())
        except AdgenError as exc:
            return Outcome(error=exc)

    def lora_id(self, style: str) -> Outcome:
        """The fingerprint of the LoRA file `style` runs with (None: none), or the error using it raises."""
        try:
            engine = self._engine()
            return Outcome(engine.lora_id(get_preset(engine.presets, style)))
        except AdgenError as exc:
            return Outcome(error=exc)

    def render(self, job_id: str, request: AdRequest, keys: dict[int, str]) -> Outcome:
        """The PNGs of `request`'s images for the seeds in `keys`, after checking this worker plans the same keys."""

        def run(engine, job):
            plan = engine.plan(request)
            mine = {seed: plan.keys.get(seed) for seed in keys}
            if mine != keys:
                raise Mismatch(f"worker: worker {self.index + 1} makes different images than the front end "
                               f"expects (another model, dtype or library version); it takes no more jobs")
            return engine.render(plan, list(keys), self._reporter(job_id), job)

        return self._job(job_id, run)

    def write(self, job_id: str, work, info: ModelInfo) -> Outcome:
        """A writer job as the front end planned it (its instructions, messages) for the model `info` describes,
        on this worker's text encoder."""
        from .writer import sample

        def run(engine, job):
            if engine.info() != info:  # the front end caches the answer under a key made for `info`
                raise Mismatch(f"worker: worker {self.index + 1} makes different images than the front end "
                               f"expects (another model, dtype or library version); it takes no more jobs")
            return sample(engine, work, self._reporter(job_id), job)

        return self._job(job_id, run)

    def call(self, name: str, *args):
        """An engine operation for every worker (the admin's memory mode and unload, the CLI's warm-up)."""
        try:
            return Outcome(getattr(self._engine(), name)(*args))
        except AdgenError as exc:
            return Outcome(error=exc)

    def progress(self, job_id: str, shown: tuple[int, int] | None, wait: float = 1.0) -> tuple[int, int] | None:
        """The job's (steps done, steps in all) once it differs from `shown` (or after `wait` s, or at its end)."""
        with self._changed:
            self._changed.wait_for(lambda: self._progress.get(job_id) != shown, wait)
            return self._progress.get(job_id)

    def stop(self, job_id: str, reason: str) -> bool:
        """Stop a job at its next step; a Stop that overtakes its job's start is kept for it."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                self._early[job_id] = reason
                while len(self._early) > 256:
                    self._early.pop(next(iter(self._early)))
        if job is not None:
            job.stop(reason)
        return job is not None

    def _engine(self):
        if self.engine is None:
            raise ModelError(f"worker: worker {self.index + 1} cannot start: {self.error}")
        return self.engine

    def _reporter(self, job_id: str):
        def report(done: int, total: int) -> None:
            with self._changed:
                self._progress[job_id] = (done, total)
                self._changed.notify_all()

        return report

    def _job(self, job_id: str, run) -> Outcome:
        job = Job()
        job.id = job_id
        with self._lock:
            self._jobs[job_id] = job
            early = self._early.pop(job_id, None)
        if early is not None:
            job.stop(early)
        try:
            return Outcome(run(self._engine(), job), progress=self._progress.get(job_id))
        except AdgenError as exc:
            return Outcome(error=exc, progress=self._progress.get(job_id))
        finally:
            with self._lock:
                self._jobs.pop(job_id, None)
            with self._changed:
                self._progress.pop(job_id, None)
                self._changed.notify_all()


@dataclass(frozen=True)
class RemoteSource:
    """The model as the front end knows it (a worker's `ModelSource` label and demo flag)."""

    label: str
    is_demo: bool


@dataclass
class _Worker:
    handle: object
    index: int
    busy: bool = False
    broken: str = ""  # why it takes no jobs (a different model than the others); "" while usable
    seen: dict = field(default_factory=lambda: {"state": "starting"})


class Workers:
    """The engine interface (`generate`, `write`, `jobs`, `describe`, ...) over N Ray actors, one Engine each.

    `address`: a running cluster to join ("auto", "HEAD_IP:6379"); None starts a new local Ray.
    """

    def __init__(self, n: int | None = None, address: str | None = None, config: WorkerConfig | None = None, *,
                 cache: ResultCache | None = None, presets: dict[str, StylePreset] | None = None,
                 ray_options: dict | None = None):
        if n is not None:
            n = check_int("workers", n, 1, MAX_WORKERS)  # said before Ray starts
        self.config = config or WorkerConfig()
        self.cache = cache
        self.presets = presets if presets is not None else load_presets()
        self.jobs = Jobs()
        self.download = None
        self.device = torch.device("cpu")  # the front end's: the panel lists each worker's own
        self.notice = ""
        self.stop_grace = STOP_GRACE
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
            options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                           runtime_env={"env_vars": {"PYTHONPATH": path}}, **(ray_options or {}))
            try:  # no address: a new local Ray, never a cluster that happens to run on this machine
                if address is None:
                    ray.init(address="local", **options)
                else:  # the cluster's token sent, a refusal said in one line (adgen.cluster)
                    cluster.join(address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if address is None:
                    raise WorkerError(f"workers: cannot start a local Ray: {first_line(exc)}") from None
                raise WorkerError(cluster.cannot_join(address, first_line(exc))) from None
        gpus = int(ray.cluster_resources().get("GPU", 0))
        n = n if n is not None else min(max(gpus, 1), MAX_WORKERS)  # default: one per GPU in the cluster
        gpu = self.config.device == "cuda" or (self.config.device is None
                                               and gpus >= 1)
        self.resources = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_gpus": 0, "num_cpus": 1}
        if address is not None and not gpu:  # joined before its GPU nodes did? Said, not silently CPU workers
            self.notice = (f"the Ray cluster at {address} has no GPU: the {n} workers run on CPUs "
                           f"(start AdGen after the GPU nodes joined)")
            log.warning("%s", self.notice)
        actor = ray.remote(EngineWorker).options(max_restarts=-1, max_task_retries=0, max_concurrency=8,
                                                 **self.resources)
        self._workers = [_Worker(actor.remote(i, self.config, self.presets), i) for i in range(n)]
        self._free = threading.Condition()
        self._info: ModelInfo | None = None  # asked of the first worker to load; again after a Mismatch
        self._info_lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="adgen-workers", daemon=True)
        self._watcher.start()
        atexit.register(self.close)  # before Ray's own shutdown (atexit runs last-registered first)

    @property
    def parallel(self) -> int:
        """How many jobs run at once (the page's GPU queue limit; a campaign's files in flight)."""
        return len(self._workers)

    # -- what the front end shares with the engine's interface ----------------------------------
    def info(self, timeout: float = 600) -> ModelInfo:
        return self._model(timeout)

    def model_fingerprint(self) -> str:
        return self.info().fingerprint

    def numerics(self) -> dict:
        return dict(self.info().numerics)

    @property
    def source(self) -> RemoteSource:
        """The workers' model: as planned with, else as a worker last reported it (waiting up to 10 s for one)."""
        deadline = time.monotonic() + 10
        while self._info is None:
            seen = next((w.seen for w in self._workers if w.seen.get("model")), None)
            if seen is not None:
                return RemoteSource(seen["model"], bool(seen.get("demo")))
            if time.monotonic() > deadline or self._closed.wait(0.05):
                return RemoteSource("…", False)
        return RemoteSource(self._info.label, self._info.demo)

    @property
    def state(self) -> str:
        states = [w.seen.get("state") for w in self._workers if not w.broken]
        for state in ("ready", "loading", "unloaded"):
            if state in states:
                return state
        return "error" if all(s == "error" for s in states) else "loading"

    def stop(self, session: str) -> int:
        return self.jobs.stop(session)

    def describe(self) -> dict:
        """The front end's summary for the status line, and each worker's last report ("workers")."""
        first = next((w.seen for w in self._workers if w.seen.get("model")), {})
        errors = [w.broken or w.seen.get("error", "") for w in self._workers]
        return {"state": self.state, "model": first.get("model", "…"), "demo": bool(first.get("demo")),
                "device": f"{len(self._workers)} workers", "dtype": first.get("dtype", "?"), "loras": [],
                "style": None, "error": next((e for e in errors if e), ""), "notice": self.notice, "download": "",
                "memory": "", "memory_reason": "", "attention": first.get("attention", ""), "compiled": False,
                "jobs": len(self.jobs.running()), "workers": self.workers()}

    def workers(self) -> list[dict]:
        """Each worker's last report: state, device, GPU, memory, host, the job it runs."""
        return [{**w.seen, "index": w.index, "busy": w.busy, "gpus": self.resources["num_gpus"],
                 **({"state": "error", "error": w.broken} if w.broken else {})} for w in self._workers]

    def load_in_background(self, warmup: bool = False) -> None:
        """Every worker loads as it starts; `warmup` also asks each for a throw-away run (not waited for)."""
        if warmup:
            for worker in self._workers:
                worker.handle.call.remote("warmup")

    def warmup(self) -> float:
        start = time.perf_counter()
        self._each("warmup")
        return time.perf_counter() - start

    def set_memory_mode(self, mode: str) -> str:
        return self._each("set_memory_mode", mode)[0]

    def unload(self) -> None:
        self._each("unload")

    def close(self) -> None:
        """Stop the panel's watcher and the actors; shut Ray down if this object started it (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        atexit.unregister(self.close)
        self._watcher.join(timeout=5)
        if ray.is_initialized():
            for worker in self._workers:
                ray.kill(worker.handle, no_restart=True)
            if self._owns_ray:
                ray.shutdown()

    # -- jobs ------------------------------------------------------------------------------------
    def plan(self, request: AdRequest, job: Job | None = None) -> ImagePlan:
        request = request.resolved()
        preset = get_preset(self.presets, request.preset)
        info = self._model(600, job)
        return plan_images(request, preset, info, self._lora(preset.name, job))

    def generate(self, request: AdRequest, progress: Progress | None = None, use_cache: bool = True,
                 job: Job | None = None) -> Result:
        """As `Engine.generate`: cached images from here, the others made by one free worker."""
        start = time.perf_counter()
        with self.jobs.open(job=job) as running:
            for again in (False, True):
                plan = self.plan(request, running)
                cache = self.cache if use_cache else None
                done = plan.cached(cache)
                pending = {seed: key for seed, key in plan.keys.items() if seed not in done}
                if not pending:
                    break
                try:
                    made = self._run("render", running, progress, plan.request, pending, strict=again)
                except Mismatch:  # a LoRA file changed, say: plan once more with what the workers say now
                    if again:
                        raise
                    self._forget()
                    continue
                for seed, png in made.items():
                    if cache:
                        cache.put(pending[seed], png)
                    done[seed] = plan.picture(seed, png)
                break
        return plan.result(done, time.perf_counter() - start)

    def write(self, request, progress: Progress | None = None, use_cache: bool = True, job: Job | None = None):
        """As `Engine.write`: the cached answers from here, else the writer on one free worker."""
        from .writer import plan, recall, remember, written_of

        start = time.perf_counter()
        with self.jobs.open(job=job) as running:
            self._model(600, running)  # the key needs the workers' model; a Stop ends the wait for it
            work = plan(self, request)
            cache = self.cache if use_cache else None
            answers = recall(cache, work)
            if answers is not None:
                return written_of(self, work, answers, start, cached=True)
            written = self._run("write", running, progress, work, self.info())
        remember(cache, work, list(written.raw))
        return replace(written, seconds=time.perf_counter() - start)

    def _run(self, method: str, job: Job, progress: Progress | None, *args, strict: bool = True):
        """`method` of a free worker for `job`: progress polled and Stop passed on while it runs."""
        worker = self._take(job)
        handle, ref, stopped_at = worker.handle, None, None
        try:
            ref = getattr(handle, method).remote(job.id, *args)
            shown = None
            polling = handle.progress.remote(job.id, None) if progress is not None else None
            with job.on_stop(lambda: handle.stop.remote(job.id, job.reason)):  # a Stop goes on at once
                while True:
                    ready, _ = ray.wait([ref] if polling is None else [ref, polling], num_returns=1, timeout=POLL)
                    if ref in ready or ray.wait([ref], timeout=0)[0]:
                        break
                    if job.stopped:  # also polls a disconnect probe; a Stop it finds is passed on by the hook
                        stopped_at = stopped_at or time.monotonic()
                        if time.monotonic() - stopped_at > self.stop_grace:  # a worker not placed yet, or hung
                            with suppress(Exception):  # best effort: the worker may be gone or not placed
                                ray.cancel(ref)
                            raise GenerationStopped(*(shown or (0, 0)), job.reason)
                    if polling is not None and polling in ready:  # the worker answers when the step changes
                        step = ray.get(polling)
                        if step is not None and step != shown:
                            shown = step
                            progress(*step)
                        polling = handle.progress.remote(job.id, shown)
            outcome: Outcome = ray.get(ref)
        except ray.exceptions.RayActorError:
            worker.seen = {"state": "restarting"}  # the next job goes to another worker while Ray restarts it
            raise WorkerError(f"worker: worker {worker.index + 1} stopped while running this job (Ray is restarting "
                              f"it); try again") from None
        except ray.exceptions.RayTaskError as exc:  # a bug on the worker: its first line, the log has the rest
            log.error("worker %d failed: %s", worker.index + 1, exc)
            raise WorkerError(f"worker: worker {worker.index + 1} failed: {first_line(exc.cause or exc)}") from None
        except ray.exceptions.RayError as exc:  # Ray itself (a lost object, its system): the job failed, not the page
            log.error("worker %d: Ray failed: %s", worker.index + 1, exc)
            raise WorkerError(f"worker: worker {worker.index + 1} failed: {first_line(exc)}") from None
        except GenerationStopped:
            if stopped_at is not None:  # let go after the grace: the worker is free only once its job ends
                threading.Thread(target=self._give_back_after, args=(worker, ref), daemon=True).start()
                worker = None
            raise
        finally:
            if worker is not None:
                self._give_back(worker)
        if progress is not None and outcome.progress is not None and outcome.progress != shown:
            progress(*outcome.progress)
        if outcome.error is not None:
            if isinstance(outcome.error, Mismatch) and strict:  # still different once the front end asked again
                worker.broken = str(outcome.error).removeprefix("worker: ")
            raise outcome.error
        return outcome.value

    def _take(self, job: Job) -> _Worker:
        """A free worker for `job`, waiting while all are busy; Stop ends the wait.

        Workers that have answered (their process is up) come first, ready ones before loading ones; a job waits
        for one of them rather than go to a worker Ray has not placed or is restarting. Only when no worker has
        answered does a job go to one that has not (Ray runs it once the worker is up).
        """
        with self._free:
            while True:
                job.check()
                usable = [w for w in self._workers if not w.broken and w.seen.get("state") != "error"]
                if not usable:
                    reasons = "; ".join(f"worker {w.index + 1}: {w.broken or w.seen.get('error') or 'error'}"
                                        for w in self._workers)
                    raise WorkerError(f"worker: no worker can run jobs ({reasons})")
                worker = _choose(usable)
                if worker is not None:
                    worker.busy = True
                    return worker
                self._free.wait(POLL)

    def _give_back_after(self, worker: _Worker, ref) -> None:
        with suppress(Exception):
            ray.wait([ref], timeout=None)
        self._give_back(worker)

    def _give_back(self, worker: _Worker) -> None:
        with self._free:
            worker.busy = False
            self._free.notify()

    def _each(self, name: str, *args, timeout: float = 120) -> list:
        """An engine operation on every worker whose process is up, in order; the first error is raised."""
        up = [w for w in self._workers if not w.broken and w.seen.get("state") in UP]
        if not up:
            raise WorkerError("worker: no worker is up yet; try again in a moment")
        try:
            outcomes = ray.get([w.handle.call.remote(name, *args) for w in up], timeout=timeout)
        except ray.exceptions.RayError as exc:
            raise WorkerError(f"worker: {name} did not finish on every worker: {first_line(exc)}") from None
        for outcome in outcomes:
            if outcome.error is not None:
                raise outcome.error
        return [o.value for o in outcomes]

    def _model(self, timeout: float, job: Job | None = None) -> ModelInfo:
        """The workers' `ModelInfo`, from the first worker to load its model; asked once (again after `_forget`).
        A Stop of `job` ends the wait (workers may be loading, or waiting for Ray to place them)."""
        deadline = time.monotonic() + timeout
        with self._locked(self._info_lock, job):
            if self._info is not None:
                return self._info
            refs = {w.handle.info.remote(): w for w in self._workers if not w.broken}
            errors = []
            while refs and time.monotonic() < deadline:
                ready = self._wait(list(refs), deadline, job)
                if not ready:
                    continue
                worker = refs.pop(ready[0])
                try:
                    outcome = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    errors.append(f"worker {worker.index + 1}: {first_line(exc)}")
                    continue
                if outcome.error is None:
                    self._info = outcome.value
                    return self._info
                errors.append(str(outcome.error))
            raise ModelError("model: no worker has its model ready" + (f" ({'; '.join(errors)})" if errors else
                                                                      " yet; try again in a moment"))

    def _lora(self, style: str, job: Job | None = None) -> str | None:
        """The fingerprint of `style`'s LoRA file as the workers see it, asked of one for every plan: a file replaced
        on disk changes the key at once, as in-process (the worker's `Engine.lora_id`: a stat, the file hashed again
        only when its size or time changed), so a cached image of the old file is never served."""
        answered = [w for w in self._workers if not w.broken and w.seen.get("state") in UP] or self._workers
        ref = answered[0].handle.lora_id.remote(style)
        deadline = time.monotonic() + 600
        while not self._wait([ref], deadline, job):
            if time.monotonic() >= deadline:
                raise ModelError(f"model: no worker answered for the {style} style's LoRA; try again in a moment")
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise WorkerError(f"worker: worker {answered[0].index + 1} failed: {first_line(exc)}") from None
        if outcome.error is not None:
            raise outcome.error
        return outcome.value

    def _forget(self) -> None:
        """Ask the workers again for the model's info (it changed under us)."""
        with self._info_lock:
            self._info = None

    @staticmethod
    def _wait(refs: list, deadline: float, job: Job | None) -> list:
        """The refs ready within a short while (none once `deadline` passed); `job`'s Stop raises."""
        if job is not None:
            job.check()
        return ray.wait(refs, num_returns=1, timeout=max(min(POLL * 4, deadline - time.monotonic()), 0))[0]

    @staticmethod
    @contextmanager
    def _locked(lock: threading.Lock, job: Job | None):
        while not lock.acquire(timeout=POLL * 4):
            if job is not None:
                job.check()
        try:
            yield
        finally:
            lock.release()

    def _watch(self) -> None:
        """Keep each worker's last report for the panel; one question at a time per worker.

        A worker that never answered is starting (Ray may be waiting for a free GPU); one whose actor died is
        restarting until its new process answers.
        """
        asked: dict = {}
        while not self._closed.is_set() and ray.is_initialized():
            try:
                asked = self._look(asked)
            except Exception:  # noqa: BLE001 - Ray shut down under it (the process ends), or a passing hiccup
                if self._closed.is_set() or not ray.is_initialized():
                    return
                log.warning("the workers' panel could not look at them", exc_info=True)
                self._closed.wait(REFRESH)

    def _look(self, asked: dict) -> dict:
        """One look: ask each worker that has no question pending, take the answers that came within REFRESH."""
        for worker in self._workers:
            if worker.index not in asked:
                asked[worker.index] = (worker.handle.describe.remote(), time.monotonic())
        refs = [ref for ref, _ in asked.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=REFRESH)
        for ref in ready:
            index = next(i for i, (r, _) in asked.items() if r == ref)
            worker = self._workers[index]
            del asked[index]
            try:
                worker.seen = ray.get(ref)
            except ray.exceptions.RayError:
                worker.seen = {"state": "restarting"}
        for index, (_, since) in asked.items():  # asked a while ago and not answered
            worker = self._workers[index]
            if time.monotonic() - since > 2 * REFRESH and worker.seen.get("state") not in ("starting",):
                worker.seen = {**worker.seen, "state": "restarting"}
        self._closed.wait(REFRESH / 4 if ready else 0)
        return asked


def _choose(usable: list[_Worker]) -> _Worker | None:
    """The free worker to send a job to (None: wait): one whose process is up, ready before loading; one that
    has not answered yet only when none has."""
    up = [w for w in usable if w.seen.get("state") in UP]
    free = [w for w in (up or usable) if not w.busy]
    return min(free, key=lambda w: w.seen.get("state") != "ready") if free else None
