"""fp8/int8 quantization (torchao) on CPU, in float32 and bf16: the demo model generates quantized, its keys and PNGs
say so, styles and compile work on it, the forecast counts it, and `python -m adgen memory` reports it."""

import importlib.metadata
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from adgen import quantize
from adgen.__main__ import main
from adgen.engine import Engine
from adgen.errors import InputError
from adgen.memory import GB, forecast
from adgen.metadata import read_chunk
from adgen.quantize import prefer_fp8, quantizable, transformer_bytes, weight_bytes
from adgen.synthetic import FULL_SIZE, footprint_full_size, scaled, transformer_shapes

from conftest import small

DTYPES = [torch.float32, torch.bfloat16]


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


@pytest.fixture(scope="module", params=DTYPES, ids=["float32", "bfloat16"])
def pair(request, tmp_path_factory, demo_cache):
    """(unquantized, fp8) demo engines sharing one result cache, per dtype (built once per module)."""
    from adgen.cache import ResultCache
    from adgen.models import resolve_model

    source = resolve_model("demo", cache=demo_cache)
    cache = ResultCache(tmp_path_factory.mktemp("quantize-results"))
    return tuple(Engine(source, cache=cache, device="cpu", dtype=request.param, quantize=q) for q in ("none", "fp8"))


def test_fp8_generates_close_to_unquantized_and_never_shares_its_cache_entries(pair, product):
    plain, fp8 = pair
    request = small(product, steps=1, prompt="one prompt")
    first = plain.generate(request).images[0]
    quantized = fp8.generate(request).images[0]  # same cache, same request: must not be served the bf16 image
    assert fp8.runs == 1 and not quantized.cached and quantized.key != first.key
    assert fp8.quantization() == "float8-weight"  # CPU: float8 weights, matmuls in the run dtype
    assert "fp8: float8 weights only on CPU" in fp8.describe()["notice"]  # the fallback says which and why
    assert fp8.describe()["quantize"] == "float8-weight" and plain.describe()["quantize"] == "none"
    a, b = _pixels(first.png), _pixels(quantized.png)
    assert 0 < np.abs(a - b).mean() < 4 and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
    params = read_chunk(quantized.png)
    assert params["quantize"] == "float8-weight" and "quantize" not in read_chunk(first.png)
    assert "Quantization: float8-weight" in Image.open(io.BytesIO(quantized.png)).text["parameters"]
    assert fp8.generate(request).images[0].cached  # its own entry serves it again
    assert type(fp8.load().transformer.layers[0].attention.to_q.weight).__name__ == "Float8Tensor"
    assert fp8.load().transformer.layers[0].adaLN_modulation[0].weight.dtype == fp8.dtype  # kept in the run dtype


def test_a_style_switch_on_a_quantized_model_needs_no_reload(pair, product):
    _, fp8 = pair
    if fp8.dtype != torch.bfloat16:
        pytest.skip("one dtype is enough: the adapters are the same code in both (budget)")
    fixed = dict(prompt="one prompt", steps=1)
    photo = fp8.generate(small(product, preset="photo", **fixed)).images[0]  # the first test's image (cached)
    anime = fp8.generate(small(product, preset="anime", **fixed), use_cache=False).images[0]
    back = fp8.generate(small(product, preset="photo", **fixed), use_cache=False).images[0]
    assert photo.png != anime.png and back.png == photo.png
    assert fp8.loads == 1 and "anime" in fp8.loaded_loras


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "bfloat16"])
def test_quantized_weights_measured_from_storages_are_as_forecast_and_half_of_bf16_at_full_size(dtype):
    from diffusers import ZImageTransformer2DModel

    config = scaled(FULL_SIZE, transformer={"dim": 128, "n_layers": 1, "n_refiner_layers": 1, "n_heads": 1,
                                            "n_kv_heads": 1,
                                            "cap_feat_dim": 64, "axes_dims": (32, 48, 48)})
    torch.manual_seed(0)
    transformer = ZImageTransformer2DModel(**{k: list(v) if isinstance(v, tuple) else v
                                              for k, v in config.transformer.items()}).to(dtype)
    size = torch.empty((), dtype=dtype).element_size()
    plain = weight_bytes(transformer)
    shapes = [(name, tuple(p.shape)) for name, p in transformer.named_parameters()]
    assert plain == transformer_bytes(shapes, size, "none")
    quantize.quantize(transformer, "float8-weight")
    measured = weight_bytes(transformer)  # the Float8Tensors' own storages: 1-byte data and the row scales
    assert measured == pytest.approx(transformer_bytes(shapes, size, "float8-weight"), rel=0.01)
    assert transformer_shapes(config) == shapes  # the forecast's shapes are the model's
    layer = transformer.layers[0].feed_forward.w1
    assert weight_bytes(layer) == layer.in_features * layer.out_features + 4 * layer.out_features  # fp8 + a scale/row
    full = transformer_shapes()  # the same forecast at ZIT's shapes: about half of bf16's 12.3 GB
    assert transformer_bytes(full, 1, "float8-weight") / transformer_bytes(full, 2, "none") == \
        pytest.approx(0.51, abs=0.02)


@pytest.mark.parametrize(("name", "eight_bit"), [
    ("layers.0.attention.to_q.weight", True), ("layers.29.feed_forward.w2.weight", True),
    ("noise_refiner.1.attention.to_out.0.weight", True), ("context_refiner.0.feed_forward.w1.weight", True),
    ("layers.0.adaLN_modulation.0.weight", False), ("all_final_layer.2-1.linear.weight", False),
    ("all_x_embedder.2-1.weight", False), ("t_embedder.mlp.0.weight", False), ("cap_embedder.1.weight", False),
    ("layers.0.attention.norm_q.weight", True), ("layers.0.attention.to_q.bias", False),
])
def test_which_weights_are_quantized(name, eight_bit):
    # norm_q is a 1-D scale: `quantizable` names it, the filter only ever passes nn.Linear modules
    assert quantizable(name) is eight_bit


def test_full_size_fp8_fits_a_24gb_card_on_the_gpu_and_auto_prefers_it():
    plain = footprint_full_size(torch.bfloat16)
    shapes = transformer_shapes()
    eight = quantize.quantized_footprint(plain, shapes, 2, "8-bit")
    assert 6.0 < eight.transformer / GB < 6.6  # published FP8 transformer file: 6.2 GB
    assert forecast(plain, "gpu", 1024, 1024) / GB == pytest.approx(24.9, abs=0.1)
    assert 18.5 < forecast(eight, "gpu", 1024, 1024) / GB < 19.5  # published: 19.3 GB
    assert prefer_fp8("auto", 24 * GB, plain, eight)[0]
    assert not prefer_fp8("auto", 80 * GB, plain, eight)[0]  # bf16 fits: nothing to gain in memory
    assert not prefer_fp8("auto", 16 * GB, plain, eight)[0]  # fp8 does not fit either: offload unquantized
    assert not prefer_fp8("offload", 24 * GB, plain, eight)[0] and not prefer_fp8("auto", None, plain, eight)[0]


def test_float32_activations_are_forecast_at_twice_bf16s_bytes():
    bf16, fp32 = footprint_full_size(torch.bfloat16), footprint_full_size(torch.float32)
    for mode in ("gpu", "lowvram"):
        bf16_act = forecast(bf16, mode, 1024, 1024) - (bf16.weights if mode == "gpu" else 0)
        fp32_act = forecast(fp32, mode, 1024, 1024) - (fp32.weights if mode == "gpu" else 0)
        assert fp32_act == pytest.approx(2 * bf16_act, rel=0.01), mode


def test_unknown_values_and_the_environment(monkeypatch):
    with pytest.raises(InputError, match=r"^quantize: must be one of auto, none, fp8, int8 \(got 'fp4'\)$"):
        quantize.check("fp4")
    monkeypatch.setenv("ADGEN_QUANTIZE", "INT8")
    assert quantize.check(None) == "int8" and quantize.check("none") == "none"


def test_fp8_that_cannot_run_falls_back_to_the_nearest_scheme_with_one_line(monkeypatch):
    monkeypatch.setattr(quantize, "fp8_units", lambda device: True)  # as on an L4; float8 dynamic then fails for real
    scheme, why = quantize.choose("fp8", torch.device("cpu"), torch.bfloat16)
    assert scheme == "float8-weight" and "float8-dynamic cannot run on CPU" in why and "\n" not in why


@pytest.mark.parametrize(("found", "line"), [
    (None, "quantize: torchao is not installed (pip install torchao=="),
    ("0.9.0", "quantize: torchao 0.9.0 is too old (AdGen needs 0.18.0 or newer); running unquantized"),
])
def test_torchao_missing_or_too_old_runs_unquantized_and_says_so(monkeypatch, demo_source, product, found, line):
    real = importlib.metadata.version

    def version(name):
        if name != "torchao":
            return real(name)
        if found is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return found

    monkeypatch.setattr(importlib.metadata, "version", version)
    engine = Engine(demo_source, cache=None, device="cpu", quantize="fp8")
    assert engine.quantization() == "none" and line in engine.describe()["notice"]
    assert "quantize" not in engine.numerics()


def test_bad_quantize_flag_is_one_line(capsys):
    assert main(["generate", "--product", "x", "--model", "demo", "--quantize", "fp16"]) == 2
    assert capsys.readouterr().err == "error: --quantize: must be one of auto, none, fp8, int8 (got 'fp16')\n"


def test_memory_command_for_synthetic_on_a_24gb_card(capsys):
    assert main(["memory", "--model", "synthetic", "--quantize", "fp8", "--gpu-gb", "24", "--json"]) == 0
    fp8 = json.loads(capsys.readouterr().out)
    assert fp8["modes"]["gpu"]["fits"] and fp8["auto"] == {**fp8["auto"], "memory": "gpu", "quantize": "fp8"}
    assert set(fp8["modes"]) == {"gpu", "offload", "lowvram"} and 14 < fp8["weights_gb"] < 15
    assert main(["memory", "--model", "synthetic", "--quantize", "none", "--gpu-gb", "24", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert not plain["modes"]["gpu"]["fits"] and plain["auto"]["memory"] == "offload"
    assert plain["modes"]["gpu"]["peak_gb"] == pytest.approx(24.9, abs=0.1)
    assert main(["memory", "--model", "synthetic", "--gpu-gb", "24"]) == 0  # auto: fp8 on the GPU
    out = capsys.readouterr().out
    assert "gpu      peak ~18.9" in out and "auto on a 24 GB card: gpu mode, quantize fp8" in out


def test_memory_command_for_the_demo_model(capsys):
    assert main(["memory", "--model", "demo", "--size", "512x768", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["model"] == "demo model (random weights)" and figures["size"] == "512x768"
    assert figures["quantize"] == "none" and "auto" not in figures and figures["weights_gb"] < 0.01
    assert main(["memory", "--model", "demo", "--gpu-gb", "lots"]) == 2
    assert capsys.readouterr().err == "error: --gpu-gb: must be a number from 1 to 1024 (got 'lots')\n"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "bfloat16"])
def test_the_engine_and_the_memory_command_count_one_8_bit_footprint(dtype, demo_source):
    """One function for both: the engine's forecast and `adgen memory` give the same bytes (they once differed by
    a byte: the engine scaled by a ratio, the command summed the tensors)."""
    from adgen.models import resolve_model
    from adgen.sizing import footprints

    for source, model in ((resolve_model("synthetic"), "synthetic"), (demo_source, str(demo_source.path))):
        plain, eight = footprints(model, dtype)[1:]
        for scheme, expected in (("none", plain), ("int8", eight)):
            assert Engine(source, cache=None, device="cpu", dtype=dtype, quantize=scheme).footprint() == expected


def test_set_quantize_reloads_in_the_new_scheme_and_compile_runs_on_it(demo_source, product):
    torch._dynamo.reset()  # as in a fresh process: other tests' engines compiled the same block code
    engine = Engine(demo_source, cache=None, device="cpu", quantize="none", compile=True, compile_backend="eager")
    engine.load()
    assert engine.set_quantize("int8") == "int8-weight" and engine.state == "unloaded"
    image = engine.generate(small(product, steps=1, preset="anime")).images[0]  # compiled, LoRA in its slot
    assert engine.loads == 2 and engine.numerics()["quantize"] == "int8-weight" and engine.numerics()["compile"]
    assert type(engine.load().transformer.layers[0].feed_forward.w1.weight).__name__ == "Int8Tensor"
    assert _pixels(image.png).shape == (256, 256, 3)
    with pytest.raises(InputError, match="quantize: must be one of"):
        engine.set_quantize("bf8")


def test_zerogpu_duration_is_computed_from_the_request_and_compile_is_refused_there(monkeypatch):
    from adgen import zerogpu
    from adgen.settings import add_runtime_flags

    durations = zerogpu.Durations(prior=0.35)
    preview, one, four_large = (durations.seconds(1, 512, 512, 2), durations.seconds(1, 1024, 1024, 8),
                                durations.seconds(4, 2048, 2048, 8))
    assert preview == zerogpu.MIN_S < one < four_large <= zerogpu.MAX_S and four_large > 2.5 * one
    durations.observe(1, 1024, 1024, 8, 60.0)  # a slow GPU: the next request asks for more
    assert durations.seconds(1, 1024, 1024, 8) > one
    durations.observe(1, 1024, 1024, 8, 0.01)  # a cache hit says nothing about the GPU
    assert durations.measured == 1

    def generate(name: str, width: int = 1024, height: int = 1024, steps: int = 8, count: int = 1):
        return name

    assert zerogpu.request_sizes(zerogpu.named_values(generate, ("x",), {"count": 3})) == (3, 1024, 1024, 8)
    width, steps = object(), object()  # a handler given its inputs as one {component: value} dict
    named = zerogpu.named_values(lambda data, request=None: data, ({width: 768, steps: 4},), {},
                                 {width: "width", steps: "steps"})
    assert zerogpu.request_sizes(named) == (1, 768, 1024, 4)
    assert zerogpu.request_sizes({"channels": ["a", "b"], "variants": 3})[0] == 6

    import argparse

    parser = argparse.ArgumentParser()
    add_runtime_flags(parser)
    parser.add_argument("--model")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    from adgen.settings import make_engine

    engine = make_engine(parser.parse_args(["--model", "demo", "--compile"]))
    assert engine.compile is False and engine.notice == zerogpu.COMPILE_NOTE


def test_bench_fp8_rows_run_on_cpu_and_measure_how_far_the_image_moves(pair):
    from bench import gpu, quant

    if pair[0].dtype != torch.bfloat16:
        pytest.skip("the bench runs in bf16")

    def factory(memory: str, quantize: str) -> Engine:  # the module's loaded engines (bench --gpu: OneEngine)
        return pair[quantize == "fp8"]

    rows = quant.fp8_rows(factory, gpu, gpu.Clock(600), sizes=(256,), runs=1, steps=1, compiled=False)
    named = {row[0]: row[1:] for row in rows}
    assert list(named) == ["fp8 vs bf16 · 256² · seconds per warm image · eager", "fp8 vs bf16 · 256² · peak VRAM "
                           "allocated", "fp8 vs bf16 · 256² · image against bf16 (seed 7)"], rows
    speed = named["fp8 vs bf16 · 256² · seconds per warm image · eager"]
    assert speed[1].endswith("x bf16's speed") and speed[2].startswith("float8-weight; ")
    assert named["fp8 vs bf16 · 256² · peak VRAM allocated"][0] == "n/a (peak stats need CUDA)"
    moved = named["fp8 vs bf16 · 256² · image against bf16 (seed 7)"][0]
    mad, corr = (float(part.split()[-1].split("/")[0]) for part in moved.split(" · "))
    assert 0 < mad < 4 and 0.99 < corr < 1


def test_image_distance():
    from bench.quant import image_distance, verdict

    def png(values) -> bytes:
        out = io.BytesIO()
        Image.fromarray(np.array(values, dtype=np.uint8)).save(out, format="PNG")
        return out.getvalue()

    a = png([[[0, 0, 0], [100, 100, 100]]])
    assert image_distance(a, a) == (0.0, pytest.approx(1.0))
    assert image_distance(a, png([[[10, 10, 10], [110, 110, 110]]])) == (10.0, pytest.approx(1.0))
    assert image_distance(a, png([[[100, 100, 100], [0, 0, 0]]])) == (100.0, pytest.approx(-1.0))
    with pytest.raises(ValueError, match="images differ in size"):
        image_distance(a, png([[[0, 0, 0]]]))
    assert verdict(1.4, 1.3, True).startswith("meets") and verdict(0.8, 0.75, False).startswith("misses")
