"""`python -m bench --gpu`: every measurement runs on CPU on the demo model (peak stats aside), and CPU is refused."""

import pytest
import torch

from adgen.engine import Engine
from bench import gpu


@pytest.fixture
def factory(demo_source):
    def make(**settings) -> Engine:
        settings.setdefault("compile_backend", "eager")  # inductor on CPU takes minutes; the code path is the same
        return Engine(demo_source, cache=None, device="cpu", **settings)

    engines = gpu.OneEngine(make)
    yield engines
    engines.close()


def test_every_measurement_runs_and_the_table_is_appended(factory, tmp_path, monkeypatch):
    torch._dynamo.reset()  # as in a fresh process: other tests' engines compiled the same block code
    monkeypatch.setattr(gpu, "PEAK_STEPS", 1)  # the peak rows' code path at one step a mode, not two
    clock = gpu.Clock(600)
    rows = gpu.measure(factory, clock, size=256, large=256, runs=1, attention=None, steps=1, count=2,
                       fp8=False)  # fp8 rows: tests/test_quantize.py
    names = [row[0] for row in rows]
    assert names == ["load the pipeline", "peak VRAM · gpu · 256²", "peak VRAM · offload · 256²",
                     "peak VRAM · lowvram · 256²", "seconds per warm 256² image · eager", "2-image 256² request",
                     "injected OOM: VRAM allocated after recovery vs before",
                     "2-image 256² request · PNG encoding overlapped vs inline",
                     "writer: a 16-token prompt on the loaded text encoder",
                     "seconds per warm 256² image · regional compile", "seconds per warm 256² image · flash",
                     "seconds per warm 256² image · compile + flash"]
    measured = dict((row[0], row[1:]) for row in rows)
    assert not [row for row in rows if row[1] == "failed"], rows
    assert measured["peak VRAM · gpu · 256²"][0] == "n/a (peak stats need CUDA)"  # the one CUDA-only call
    assert measured["peak VRAM · gpu · 256²"][1].startswith("forecast ")
    assert measured["seconds per warm 256² image · eager"][1] == "the baseline"
    assert measured["seconds per warm 256² image · regional compile"][1].endswith("x eager's speed")
    assert measured["injected OOM: VRAM allocated after recovery vs before"][2] == \
        "OutOfMemory raised; the next request ran"
    assert measured["seconds per warm 256² image · flash"][2].startswith("flash-attn is not installed")
    overlapped = measured["2-image 256² request · PNG encoding overlapped vs inline"]
    assert overlapped[0] == "n/a" or " s vs " in overlapped[0]
    assert factory.current is None  # measure closes the last engine

    out = tmp_path / "BENCH.md"
    out.write_text("# Benchmarks\n")
    text = gpu.table(rows, "cpu (test)", factory.label, clock, steps=1)
    gpu.append(out, text)
    written = out.read_text()
    assert written.startswith("# Benchmarks\n\n### ") and written.endswith(text)
    assert "· cpu (test) · `python -m bench --gpu`" in written
    assert "Model: demo model (random weights) · torch " in written
    assert written.count("\n| ") == len(rows) + 2 and "guard" not in written


def test_a_faster_attention_falls_back_to_native_and_says_so(factory):
    row, seconds = gpu.speed(factory, 256, "_flash_3", runs=1, baseline=1.0, steps=1, attention="_flash_3")
    assert seconds > 0 and row[0] == "seconds per warm 256² image · _flash_3"
    assert "attention native (_flash_3 unavailable" in row[3]


def test_one_engine_at_a_time(factory):
    first = factory(memory="gpu")
    first.load()
    assert factory(memory="gpu") is first
    second = factory(memory="gpu", attention="native")
    assert second is not first and first.state == "unloaded" and first._pipe is None
    with pytest.raises(TypeError):  # an unknown keyword leaves the current engine as it was
        factory(memory="gpu", no_such_switch=True)
    assert factory.current is second


def test_past_the_guard_every_row_says_skipped(factory):
    clock = gpu.Clock(0)
    rows = gpu.measure(factory, clock, size=256, large=512, runs=1, attention="flash")
    assert len(rows) == 11 and all(row[1] == "skipped" and "-minute guard" in row[3] for row in rows)
    assert factory.current is None  # nothing was built
    assert "The 0-minute guard stopped the run: 11 measurement(s) skipped." in gpu.table(rows, "cpu", "demo", clock)


def test_bench_gpu_on_cpu_exits_2_with_one_clear_line(monkeypatch, capsys):
    from bench.__main__ import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU machine even where a GPU is present
    with pytest.raises(SystemExit) as exited:  # `python -m bench --gpu`'s own entry, in this process
        main(["--gpu"])
    said = capsys.readouterr()
    assert exited.value.code == 2 and said.out == ""
    assert said.err.startswith("bench --gpu needs a CUDA GPU; this machine has none")
    assert said.err.count("\n") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--size", "1000"], "error: --size: must be a multiple of 16 (got 1000; try 992)"),
    (["--runs", "0"], "error: --runs: must be from 1 to 20 (got 0)"),
])
def test_bad_flags_are_refused_before_anything_runs(args, message, capsys):
    assert gpu.main(args) == 2
    assert capsys.readouterr().err == message + "\n"
