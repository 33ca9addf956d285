"""Ray workers (`--workers N`, `--ray-address`): one Ray head started as the docs say (`ray start --head`, token
authentication on, node address 127.0.0.1) and workers joining it by address: two float32 CPU workers and one bf16
worker on the demo model, started once for the module.

Each worker is a real Ray actor owning a real Engine in its own process; nothing is mocked. The in-process
reference runs with the workers' CPU thread count (one each: Ray gives an actor one CPU), as CPU kernels
split their sums by thread and 1 and 2 threads differ by 1/255.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import ray
import torch

from adgen.ad import AdMaker, AdSpec
from adgen.cache import ResultCache
from adgen.campaign import make_campaign
from adgen.channels import get_channels, load_channels
from adgen.engine import Engine
from adgen.errors import GenerationStopped, WorkerError
from adgen.i18n import localize_error
from adgen.jobs import Job
from adgen.page import status_line
from adgen.presets import load_presets
from adgen.request import AdRequest, Product
from adgen.studio import EngineSlot
from adgen.workers import WorkerConfig, Workers

from conftest import ROOT, small

KILLED: dict = {}  # the worker the kill test killed: its index and old pid
PRODUCT = Product(name="탄산수 Citrus Sparkling Water", category="drink", features="lemon, zero sugar",
                  copy="여름 한정")


@pytest.fixture(scope="module")
def ray_env(demo_cache, tmp_path_factory):
    """The environment of the head (its workers inherit it) and of this driver: the demo model's cache, no network,
    a Ray home of its own (its token; nothing in the user's ~/.ray) and every Ray address on loopback."""
    import ray._private.ray_constants

    folder = Path(tempfile.mkdtemp(prefix="adgen-ray-"))  # short: Ray's socket paths live under its temp dir
    (folder / "home" / ".ray").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ADGEN_CACHE_DIR", str(demo_cache))
        env.setenv("HF_HUB_OFFLINE", "1")
        env.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("hf-empty")))
        env.setenv("HOME", str(folder / "home"))
        env.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray's loopback-only mode: node address 127.0.0.1
        env.setattr(ray._private.ray_constants, "ENABLE_RAY_CLUSTER", False)  # the same, for this process's Ray
        ray_names = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")
        before = {name: os.environ.get(name) for name in ray_names}
        for name in ray_names:
            env.delenv(name, raising=False)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            for name, value in before.items():  # joining sets RAY_AUTH_MODE in this process: as it was before
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    from ray._raylet import AuthenticationTokenLoader

    AuthenticationTokenLoader.instance().reset_cache()  # a later Ray in this process reads its own token again


@pytest.fixture(scope="module")
def head(ray_env):
    """A Ray head started as docs/workers.md says (`ray start --head`), with a token as a user's Ray folder has one
    (token authentication on); every pool of this module joins it by address, and it is stopped by its pid."""
    from ray._private.authentication.authentication_token_generator import generate_new_authentication_token
    from ray._raylet import AuthenticationTokenLoader

    (ray_env / "home" / ".ray" / "auth_token").write_text(generate_new_authentication_token())
    AuthenticationTokenLoader.instance().reset_cache()  # this process reads the token of this Ray home
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = ray_env / "head.log"
    with log.open("wb") as out:
        started = subprocess.Popen([shutil.which("ray", path=Path(sys.executable).parent) or "ray", "start", "--head",
                                    "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=5",
                                    f"--temp-dir={ray_env / 'r'}", "--include-dashboard=false",
                                    "--disable-usage-stats"], stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "RAY_enable_worker_prestart": "0"})  # idle workers: CPU lost
    try:
        wait_for(lambda: b"Ray runtime started" in log.read_bytes() or started.poll() is not None, "the Ray head", 120)
        assert started.poll() is None, log.read_text(errors="replace")
        assert b"Token authentication is enabled" in log.read_bytes()  # as a user's head has it
        yield f"127.0.0.1:{port}"
    finally:
        started.terminate()  # `ray start --block` ends its GCS, raylet and workers on SIGTERM
        try:
            started.wait(30)
        except subprocess.TimeoutExpired:
            started.kill()
            started.wait()


@pytest.fixture(scope="module")
def pools(head, tmp_path_factory):
    """The module's one start of workers, all joining the head by address and loading at once: two float32 workers
    (the pool most tests use) and one bf16 worker (the real dtype)."""
    float32 = Workers(2, address=head, config=WorkerConfig(model=str(demo_dir()), device="cpu"),
                      cache=ResultCache(tmp_path_factory.mktemp("results")))
    bf16 = Workers(1, config=WorkerConfig(model=str(demo_dir()), device="cpu", dtype="bfloat16"))  # the same Ray
    try:
        for workers in (float32, bf16):
            workers.info()  # the model, then every worker's report
            wait_for(lambda w=workers: all(r["state"] == "ready" for r in w.workers()), "the workers ready")
        yield float32, bf16
    finally:
        bf16.close()
        float32.close()  # last: it started this process's Ray


@pytest.fixture(scope="module")
def pool(pools):
    return pools[0]


def demo_dir() -> Path:
    return next(Path(os.environ["ADGEN_CACHE_DIR"]).glob("demo-model-v*"))


def wait_for(condition, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def remote(pool: Workers, name: str) -> list:
    """Each worker's counter `name`, asked now (not the panel's last report)."""
    return [ray.get(w.handle.describe.remote())[name] for w in pool._workers]


@contextmanager
def threads(n: int):
    """The in-process reference at the workers' CPU thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def in_process(pool: Workers, demo_source, dtype: str = "float32") -> Engine:
    return Engine(demo_source, cache=None, presets=load_presets(), device="cpu", dtype=dtype)


def test_results_are_byte_identical_to_in_process(pool, demo_source):
    request = small(PRODUCT, seed=101, steps=2, count=2)
    remote_result = pool.generate(request, use_cache=False)
    with threads(pool.numerics()["threads"]):
        local = in_process(pool, demo_source).generate(request)
    assert [p.png for p in remote_result.images] == [p.png for p in local.images]
    assert [p.key for p in remote_result.images] == [p.key for p in local.images]
    assert remote_result.model == local.model and remote_result.demo and remote_result.prompt == local.prompt


def test_a_photo_ad_in_bf16_on_a_worker_is_byte_identical_and_stays_bf16(pools, demo_source):
    """bf16 (the real dtype) through a photo ad, the path that once turned a shared pipeline float32."""
    from test_ad import photo_png

    bf16 = pools[1]
    spec = AdSpec(small(PRODUCT, seed=5, steps=2, image=photo_png()), subcopy="500ml")
    twice = [AdMaker(bf16).make(spec, use_cache=False), AdMaker(bf16).make(small_spec(seed=6))]
    with threads(bf16.numerics()["threads"]):
        engine = in_process(bf16, demo_source, "bfloat16")
        local = [AdMaker(engine).make(spec, use_cache=False), AdMaker(engine).make(small_spec(seed=6))]
    assert [r.images[0].files for r in twice] == [r.images[0].files for r in local]
    assert bf16.numerics()["dtype"] == "bfloat16"
    assert ray.get(bf16._workers[0].handle.describe.remote())["dtype"] == "bfloat16"  # after the photo ad too


def test_a_replaced_lora_file_changes_the_key_and_the_image_through_the_workers(pool):
    """As in-process: the front end asks the workers for the style's LoRA fingerprint for every request, so a file
    replaced between two requests is a new key and a new image, never the cached image of the old file."""
    from safetensors.torch import load_file, save_file

    request = small(PRODUCT, seed=321, steps=2, preset="anime")
    first = pool.generate(request).images[0]
    lora = demo_dir() / "loras" / "anime.safetensors"
    original = lora.read_bytes()
    try:
        save_file({k: v * 2 for k, v in load_file(lora).items()}, lora, metadata={"format": "pt"})
        second = pool.generate(request).images[0]
    finally:
        lora.write_bytes(original)
    assert not second.cached and second.key != first.key and second.png != first.png


TOKEN_CHECK = """
import os, sys
from ray._raylet import AuthenticationTokenLoader
from adgen.cli_text import line
from adgen.cluster import join
from adgen.errors import WorkerError
for token, address in ((None, sys.argv[1]), ("0" * 32, sys.argv[1]), ("0" * 32, "127.0.0.1:1")):
    if token:  # no token on this machine, then one that is not the head's; then an address nothing answers at
        os.environ["RAY_AUTH_TOKEN"] = token
        AuthenticationTokenLoader.instance().reset_cache()
    try:
        join(address)
    except WorkerError as exc:
        print(line("error", str(exc)), file=sys.stderr)
"""


def test_a_head_refusing_the_token_is_one_line_that_names_the_token(head, tmp_path):
    """A machine without the head's token (none, then a wrong one) asking to join, as `Workers` does before it starts
    any worker (the Ray import alone: the CLI's would add seconds): one line each, at once, saying where the token is
    read from and what to set; in Korean too. An address nothing answers at is one line at once too (Ray waits 40 s)."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}  # this process joined in token mode
    env.update(HOME=str(home), ADGEN_LANG="en")
    done = subprocess.run([sys.executable, "-c", TOKEN_CHECK, head], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    token = home / ".ray" / "auth_token"
    how = f"(`ray get-auth-token` on the head prints it) in {token} or RAY_AUTH_TOKEN"
    lines = [f"ray address: the Ray cluster at {head} needs an authentication token and this machine has none: put "
             f"the head's token {how}",
             f"ray address: the Ray cluster at {head} refused the authentication token from RAY_AUTH_TOKEN: use the "
             f"head's token {how}"]
    assert done.stderr.splitlines()[:2] == [f"error: {line}" for line in lines] and done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[2:] == ["error: ray address: cannot join the Ray cluster at 127.0.0.1:1: nothing "
                                            "answers at 127.0.0.1:1 ([Errno 111] Connection refused) (start one with "
                                            "`ray start --head`, or leave --ray-address out for a local one)"]
    how_ko = f"(헤드에서 `ray get-auth-token`을 실행하면 나옵니다)을 {token}에 넣거나 RAY_AUTH_TOKEN으로 설정하세요"
    assert [localize_error(WorkerError(line), "ko") for line in lines] == [
        f"Ray 주소: {head}의 Ray 클러스터에는 인증 토큰이 필요한데 이 컴퓨터에는 없습니다: 헤드의 토큰{how_ko}",
        f"Ray 주소: {head}의 Ray 클러스터가 RAY_AUTH_TOKEN의 인증 토큰을 거부했습니다: 헤드의 토큰{how_ko}"]


def small_spec(**changes) -> AdSpec:
    return AdSpec(small(PRODUCT, steps=2, **changes))


def test_two_concurrent_requests_run_on_two_different_workers(pool):
    before = remote(pool, "runs")
    both_busy = []
    results = {}

    def run(seed: int) -> None:
        results[seed] = pool.generate(small(PRODUCT, seed=seed, steps=12, width=512, height=512), use_cache=False)

    runners = [threading.Thread(target=run, args=(seed,)) for seed in (201, 202)]
    for runner in runners:
        runner.start()
    while any(r.is_alive() for r in runners):
        if all(w.busy for w in pool._workers):
            both_busy.append(True)
        time.sleep(0.005)
    assert both_busy, "the two requests never ran at the same time"
    assert [a - b for a, b in zip(remote(pool, "runs"), before, strict=True)] == [1, 1]  # one each
    assert set(results) == {201, 202}


def test_a_cache_hit_reaches_no_worker(pool):
    request = small(PRODUCT, seed=301, steps=2, count=2)
    first = pool.generate(request)
    runs, writes = remote(pool, "runs"), remote(pool, "writes")
    again = pool.generate(request)
    assert not any(p.cached for p in first.images) and all(p.cached for p in again.images)
    assert [p.png for p in again.images] == [p.png for p in first.images]
    assert remote(pool, "runs") == runs and remote(pool, "writes") == writes


def test_stop_ends_a_remote_job_within_a_step(pool):
    job = Job("tab-a")
    seen = []

    def stop_at_first_step(done: int, total: int) -> None:
        seen.append(done)
        job.stop()

    with pytest.raises(GenerationStopped) as stopped:
        pool.generate(small(PRODUCT, seed=401, steps=40, width=1024, height=1024), progress=stop_at_first_step,
                      use_cache=False, job=job)
    assert stopped.value.total == 40 and stopped.value.step <= seen[0] + 1, (seen, stopped.value.step)
    assert "stopped by the user" in str(stopped.value)


def test_one_sessions_stop_never_ends_another_sessions_remote_job(pool):
    """Two sessions on the page at once: A's Stop (Stop, by session) ends A's remote job and not B's."""
    done, stepped = {}, {"tab-a": threading.Event(), "tab-b": threading.Event()}

    def run(session: str, seed: int) -> None:
        with pool.jobs.open(session) as job:
            try:
                done[session] = pool.generate(small(PRODUCT, seed=seed, steps=30, width=768, height=768),
                                              use_cache=False, job=job, progress=lambda *_: stepped[session].set())
            except GenerationStopped as exc:
                done[session] = exc

    runners = [threading.Thread(target=run, args=a) for a in (("tab-a", 501), ("tab-b", 502))]
    for runner in runners:
        runner.start()
    assert all(event.wait(60) for event in stepped.values()), done  # both jobs running on their workers
    assert pool.stop("tab-a") == 1
    for runner in runners:
        runner.join()
    assert isinstance(done["tab-a"], GenerationStopped) and done["tab-a"].total == 30
    assert done["tab-b"].images[0].seed == 502


def test_the_writer_runs_on_a_worker_and_its_answer_is_cached_here(pool, demo_source, short_writer):
    from adgen.writer import WriteRequest

    request = WriteRequest(PRODUCT, job="copy", n=2, seed=9)
    writes = sum(remote(pool, "writes"))
    first = pool.write(request)
    with threads(pool.numerics()["threads"]):
        local = in_process(pool, demo_source).write(request)
    assert first.raw == local.raw and first.texts == local.texts and first.tokens == local.tokens > 0
    again = pool.write(request)
    assert again.cached and again.raw == first.raw and sum(remote(pool, "writes")) == writes + 1


def test_a_killed_worker_gives_a_clear_error_and_the_next_request_works(pool):
    failed, stepped = {}, threading.Event()

    def run() -> None:
        try:
            pool.generate(small(PRODUCT, seed=601, steps=50, width=1024, height=1024), use_cache=False,
                          progress=lambda done, total: stepped.set())
        except Exception as exc:  # noqa: BLE001 - the test reads it
            failed["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    assert stepped.wait(60), failed  # mid-job: the worker has reported a step of it
    victim = next(w for w in pool._workers if w.busy)
    pid = victim.seen["pid"]
    ray.kill(victim.handle, no_restart=False)  # as if its process died: Ray restarts it
    runner.join(60)
    error = failed["error"]
    assert isinstance(error, WorkerError)
    assert str(error) == (f"worker: worker {victim.index + 1} stopped while running this job (Ray is restarting it); "
                          "try again")
    assert "1/2 Ray workers ready" in status_line(EngineSlot(pool), "en")[0]  # seen without opening the panel
    assert localize_error(error, "ko") == (f"워커: 워커 {victim.index + 1}이(가) 이 작업을 하던 중 멈췄습니다 "
                                           "(Ray가 다시 시작하는 중). 다시 시도하세요")
    assert pool.generate(small(PRODUCT, seed=602, steps=2), use_cache=False).images[0].seed == 602
    KILLED.update(index=victim.index, pid=pid)  # its restart is checked by the panel's test, further down


def test_keys_planned_with_stale_model_info_are_planned_again_not_a_broken_worker(pool):
    """The workers' info changed under the front end (an edited LoRA file, say): it asks again, once."""
    stale = dataclasses.replace(pool.info(), numerics={**pool.numerics(), "threads": 99})
    pool._info = stale
    result = pool.generate(small(PRODUCT, seed=311, steps=2), use_cache=False)
    assert result.images[0].seed == 311 and pool.info() != stale and pool.numerics()["threads"] == 1
    assert not any(w.broken for w in pool._workers)


def test_a_job_waits_for_a_worker_that_is_up_rather_than_one_ray_has_not_placed():
    from adgen.workers import _choose, _Worker

    ready, loading, starting = (_Worker(None, i, seen={"state": s}) for i, s in
                                enumerate(("ready", "loading", "starting")))
    assert _choose([starting, loading, ready]) is ready
    ready.busy = True
    assert _choose([starting, loading, ready]) is loading
    loading.busy = True
    assert _choose([starting, loading, ready]) is None  # wait for one of them, not the unplaced one
    restarting = _Worker(None, 3, seen={"state": "restarting"})
    assert _choose([starting, restarting]) is starting  # none is up: Ray runs it once one is


def test_workers_without_ray_installed_say_how_to_get_it(monkeypatch):
    import argparse

    from adgen.settings import make_engine

    real_ray = sys.modules["ray"]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if requirements-ray.txt were not installed
    monkeypatch.delitem(sys.modules, "adgen.workers")
    args = argparse.Namespace(workers="2", ray_address=None, model="demo", memory=None, attention=None, dtype=None,
                              compile=False)
    with pytest.raises(WorkerError, match=r"^workers: --workers and --ray-address need Ray: pip install -r "
                                          r"requirements-ray.txt$"):
        make_engine(args)
    sys.modules["ray"] = real_ray  # another Ray, without the private parts adgen.cluster uses: one line
    monkeypatch.setitem(sys.modules, "ray._raylet", None)
    monkeypatch.delitem(sys.modules, "adgen.cluster", raising=False)
    monkeypatch.delattr(sys.modules["adgen"], "cluster", raising=False)  # `from . import cluster` imports it again
    with pytest.raises(WorkerError, match=r"^workers: this Ray lacks ray._raylet, which AdGen uses; .* pip install "
                                          r"-r requirements-ray.txt$"):
        make_engine(args)


def test_a_worker_that_cannot_load_the_model_is_shown_and_refuses_jobs(pool, tmp_path, capsys):
    """The worker's own report (its real class, here in-process) in the panel, and a real one refusing the job."""
    from adgen.__main__ import main
    from adgen.monitor import worker_lines
    from adgen.workers import EngineWorker

    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")
    worker = EngineWorker(0, WorkerConfig(model=str(broken), device="cpu"), load_presets())
    wait_for(lambda: worker.describe()["state"] == "error", "the worker's load error")
    report = {**worker.describe(), "busy": False, "gpus": 0}
    assert worker_lines([report], "en") == [f"worker 1: **error** · {report['error']}"]
    assert worker_lines([report], "ko") == [f"워커 1: **오류** · {report['error']}"]
    assert "not-a-model" in report["error"]

    code = main(["campaign", "--product", "크림", "--channels", "display_300x250", "--model", str(broken),
                 "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"])
    error = capsys.readouterr().err
    assert code in (1, 2) and error.count("\n") == 1 and "not-a-model" in error, error
    assert not (tmp_path / "out").exists()


def test_a_worker_ray_cannot_place_is_shown_and_a_stop_ends_the_wait_for_it(pool):
    """A worker asking for a GPU on a cluster without one waits to be placed: the panel says so, and Stop ends
    a job waiting for its model, or sent to it, instead of leaving the tab waiting forever."""
    unplaced = Workers(1, config=WorkerConfig(model=str(demo_dir()), device="cuda"))
    try:
        assert unplaced.resources == {"num_gpus": 1, "num_cpus": 1}
        assert status_line(EngineSlot(unplaced), "ko")[1].count(
            "워커 1: **모델 불러오는 중** · 시작 중 (Ray가 배치하는 중: 남는 GPU이(가) 필요합니다)") == 1
        for known in (None, pool._info):  # waiting for the model's info, then (info known) for the worker itself
            unplaced._info, unplaced.stop_grace = known, 0.3
            job = Job("tab-a")
            threading.Timer(0.3, job.stop).start()
            started = time.monotonic()
            with pytest.raises(GenerationStopped, match="before it started"):
                unplaced.generate(small(PRODUCT, seed=901, steps=2), use_cache=False, job=job)
            assert time.monotonic() - started < 5
    finally:
        unplaced.close()


def test_a_cluster_without_gpus_is_said_not_silently_run_on_cpus(pool, head):
    """The module's pool joined the head (which has no GPU) by address: the status line says so."""
    assert pool.resources["num_gpus"] == 0
    line = status_line(EngineSlot(pool), "en")[0]
    assert f"the Ray cluster at {head} has no GPU: the 2 workers run on CPUs" in line


@pytest.mark.parametrize(("value", "why"), [("0", "must be from 1 to 64 (got 0)"),
                                          ("65", "must be from 1 to 64 (got 65)"),
                                          ("two", "must be a whole number from 1 to 64 (got 'two')")])
def test_a_bad_worker_count_is_one_line_before_anything_starts(value, why, capsys):
    from adgen.__main__ import main

    code = main(["campaign", "--product", "크림", "--channels", "instagram_square", "--out", "unused",
                 "--workers", value])
    assert code == 2 and capsys.readouterr().err == f"error: --workers: {why}\n"
    assert not (ROOT / "unused").exists()


def test_pictures_and_errors_cross_processes_as_themselves():
    import pickle

    from adgen.errors import InputError

    for error in (InputError("seed", "must be a whole number"), GenerationStopped(3, 8, "stopped by the user")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error) and vars(again) == vars(error)


def test_the_page_runs_on_the_workers_as_many_gpu_events_at_once_as_there_are(pool, tmp_path):
    """The page over workers: its GPU events run two at once, and a Korean tab's Generate makes an ad there."""
    import dataclasses

    import app
    from test_app import FORM, KOREAN, FakeProgress

    demo = app.build_demo(pool, outputs=tmp_path)
    limits = {fn.concurrency_limit for fn in demo.fns.values() if fn.concurrency_id == "gpu"}
    assert limits == {2} and demo.handlers.slots == 2  # and a waiting tab's estimate counts two at once
    runs = sum(remote(pool, "runs"))
    progress = FakeProgress()
    shown = demo.handlers.generate(dataclasses.replace(FORM, seed=801, copy="여름 한정", count=1), None, KOREAN,
                                   progress)
    assert shown["seed"] == 801 and "⚠" not in (shown.get("message") or "")
    assert sum(remote(pool, "runs")) == runs + 1 and 1.0 in progress.calls


def test_the_cli_batch_runs_its_rows_at_once_on_the_workers(pool, tmp_path, capsys, monkeypatch):
    """`batch --workers 2` (the module's workers stand in for the ones the flag starts): rows at once, a bad row
    reported, the report in row order. Packshot rows run no model: this is the batch's own threading."""
    import json

    from test_cli_campaign import PHOTO

    import adgen.settings
    from adgen.__main__ import main

    monkeypatch.setattr(adgen.settings, "make_engine", lambda args, cache=None: pool)
    monkeypatch.setattr(pool, "close", lambda: None)  # the CLI closes what it started; these are the module's
    sheet = tmp_path / "products.csv"
    sheet.write_text(f"name,copy,image\n탄산수,여름 한정,{PHOTO}\nCitrus Tea,Fresh,missing.png\n"
                     f"Green Tea,Calm,{PHOTO}\n", encoding="utf-8")
    code = main(["batch", str(sheet), "--channels", "display_320x50", "--background", "packshot", "--out",
                 str(tmp_path / "out"), "--quiet", "--workers", "2"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and [r["row"] for r in report["rows"]] == [2, 4] and [f["row"] for f in report["failed"]] == [3]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["row002-탄산수", "row004-Green-Tea"]


def test_the_panel_lists_both_workers_in_korean_and_english(pool):
    """Both workers, the one killed above restarted by Ray in a new process."""
    wait_for(lambda: [w["state"] for w in pool.workers()] == ["ready", "ready"], "the restarted worker ready", 120)
    assert KILLED and pool.workers()[KILLED["index"]]["pid"] != KILLED["pid"]
    slot = EngineSlot(pool)
    line, details = status_line(slot, "ko")
    assert "Ray 워커 2/2개 준비됨" in line and "**Ray 워커 2개** (각각 엔진 하나)" in details
    assert "2 workers" not in details and "workers run on CPUs" not in line
    assert "Ray 클러스터에 GPU가 없습니다: 워커 2개가 CPU에서 실행됩니다" in line  # the module's cluster has none
    for n in (1, 2):
        assert f"워커 {n}: **준비됨** · CPU · 32비트 정밀도 · RAM " in details and "· 호스트 " in details
    english = status_line(slot, "en")[1]
    for worker in pool.workers():
        assert f"worker {worker['index'] + 1}: **ready** · CPU · float32 · RAM " in english
        assert f"· host {worker['host']} · pid {worker['pid']}" in english


def test_a_campaign_spreads_its_files_over_the_workers(pool, demo_source):
    channels = get_channels(["instagram_square", "instagram_story"], load_channels())  # two generation sizes
    spec = AdSpec(AdRequest(PRODUCT, seed=701, steps=2))
    before = remote(pool, "runs")
    result = make_campaign(AdMaker(pool), spec, channels, 1, use_cache=False, area=256 * 256)
    assert [a - b for a, b in zip(remote(pool, "runs"), before, strict=True)] == [1, 1]
    with threads(pool.numerics()["threads"]):
        local = make_campaign(AdMaker(in_process(pool, demo_source)), spec, channels, 1, use_cache=False,
                              area=256 * 256)
    assert [(p.channel, p.png) for p in result.images] == [(p.channel, p.png) for p in local.images]


def test_the_bench_row_times_a_batch_on_each_pool(pool):
    from bench.workers import batch_row

    before = sum(remote(pool, "runs"))
    what, measured, ratio, target = batch_row(pool, pool, images=2, size=256, runs=1)
    assert what == "batch of 2 images 256x256: 2 Ray workers vs 2 (CPU, one thread each)"
    assert measured.count(" s") == 2 and ratio.endswith("x throughput") and target == ">= 1.6x"
    assert sum(remote(pool, "runs")) == before + 3 + 2 * 2  # two warm-ups, then the batch on each pool, uncached
