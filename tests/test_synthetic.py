"""The full-size synthetic ZIT: ZIT's published shapes and classes, and a shrunk copy run through the same builder."""

import json

import numpy as np
import pytest
import torch
from diffusers import ZImagePipeline

from adgen import synthetic
from adgen.__main__ import main
from adgen.memory import GB
from adgen.synthetic import FULL_SIZE, build_pipeline, parameter_counts, scaled

# Published sizes: ZIT's transformer, Qwen3-4B's body (tied embeddings, no LM head), FLUX's VAE.
ZIT_COUNTS = {"transformer": 6_154_908_736, "text_encoder": 4_022_468_096, "vae": 83_819_683}
TINY = scaled(
    FULL_SIZE,
    transformer={"dim": 64, "n_layers": 1, "n_refiner_layers": 1, "n_heads": 2, "n_kv_heads": 2, "cap_feat_dim": 32,
                 "axes_dims": (8, 12, 12)},
    text_encoder={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                  "head_dim": 16, "intermediate_size": 64},
    vae={"block_out_channels": (8, 8, 16, 16), "layers_per_block": 1, "norm_num_groups": 8},
)


def test_dry_run_prints_zits_parameter_counts_as_one_json_line(capsys):
    # in this process: the command's own code path, without a second interpreter importing torch and diffusers
    assert main(["demo-model", "--full-size", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == ZIT_COUNTS


def test_full_size_has_zits_classes_configs_and_bytes(demo_source):
    pipe = build_pipeline(FULL_SIZE, "meta", torch.bfloat16)  # shapes only: no memory
    demo = json.loads((demo_source.path / "model_index.json").read_text())
    for name in ("transformer", "text_encoder", "vae", "scheduler", "tokenizer"):
        assert type(getattr(pipe, name)).__name__ == demo[name][1], name
    config = pipe.transformer.config
    assert (config.dim, config.n_layers, config.n_refiner_layers, config.n_heads, config.cap_feat_dim) == \
        (3840, 30, 2, 30, 2560)
    assert list(config.axes_dims) == [32, 48, 48] and list(config.axes_lens) == [1536, 512, 512]
    assert pipe.vae.config.latent_channels == 16 and pipe.vae.config.scaling_factor == 0.3611
    assert pipe.scheduler.config.shift == 3.0
    assert {p.dtype for p in pipe.transformer.parameters()} == {torch.bfloat16}
    assert parameter_counts() == ZIT_COUNTS
    fp = synthetic.footprint_full_size("bfloat16")
    assert (fp.transformer, fp.text_encoder, fp.vae) == tuple(2 * n for n in ZIT_COUNTS.values())
    assert fp.weights / GB == pytest.approx(20.5, abs=0.1) and (fp.dim, fp.vae_channels) == (3840, 128)
    assert synthetic.footprint_full_size(torch.float32).weights == 2 * fp.weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_shrunk_copy_runs_one_step_through_the_same_builder(dtype):
    rng = torch.get_rng_state()
    pipe = build_pipeline(TINY, "cpu", dtype)
    assert torch.get_default_dtype() == torch.float32 and torch.equal(torch.get_rng_state(), rng)
    for name in ("transformer", "text_encoder", "vae"):
        assert {p.dtype for p in getattr(pipe, name).parameters()} == {dtype}, name
    assert pipe.text_encoder.rotary_emb.inv_freq.dtype == torch.float32  # as from_pretrained leaves it
    assert torch.equal(pipe.transformer.x_pad_token, torch.ones_like(pipe.transformer.x_pad_token))
    again = build_pipeline(TINY, "cpu", dtype)  # seeded: the same weights every time
    for a, b in zip(pipe.transformer.parameters(), again.transformer.parameters(), strict=True):
        assert torch.equal(a, b)
    pipe.set_progress_bar_config(disable=True)
    image = pipe("sparkling water", height=256, width=256, num_inference_steps=1, guidance_scale=0.0,
                 generator=torch.Generator("cpu").manual_seed(0), output_type="np").images
    assert image.shape == (1, 256, 256, 3) and np.isfinite(image).all()


def test_a_saved_copy_loads_with_from_pretrained(tmp_path):
    out = synthetic.save_pipeline(TINY, tmp_path / "tiny", "bfloat16")
    assert json.loads((out / synthetic.MARKER).read_text())["adgen_synthetic_model"] == synthetic.SYNTHETIC_VERSION
    assert not list(out.rglob("*.bin"))
    loaded = ZImagePipeline.from_pretrained(out, dtype=torch.bfloat16)
    built = build_pipeline(TINY, "cpu", "bfloat16")
    assert torch.equal(loaded.vae.decoder.conv_out.weight, built.vae.decoder.conv_out.weight)
    assert parameter_counts(TINY) == {n: sum(p.numel() for p in getattr(loaded, n).parameters())
                                      for n in ("transformer", "text_encoder", "vae")}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: scaled(FULL_SIZE, unet={}), "scaled: component must be one of transformer, text_encoder, vae"),
    (lambda: scaled(FULL_SIZE, vae={"channels": 8}), "scaled: vae has no setting 'channels'; it has"),
    (lambda: synthetic.to_dtype("float16"), r"dtype must be one of bfloat16, float32 \(got 'float16'\)"),
    (lambda: build_pipeline(scaled(TINY, text_encoder={"hidden_size": 64}), "meta", "float32"),
     r"config: transformer cap_feat_dim \(32\) must equal text_encoder hidden_size \(64\)"),
])
def test_bad_settings_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(("args", "message"), [
    (["demo-model"], "error: --out: is required: a new or empty folder for the demo model (or pass --full-size)"),
    (["demo-model", "--dry-run", "--out", "x"], "error: --dry-run: only applies with --full-size"),
    (["demo-model", "--dtype", "float32", "--out", "x"], "error: --dtype: only applies with --full-size"),
    (["demo-model", "--full-size", "--device", "tpu"], "error: --device: must be cpu, cuda or cuda:N (got 'tpu')"),
    (["demo-model", "--full-size", "--dtype", "float16"], "error: argument --dtype: invalid choice: 'float16'"),
])
def test_bad_demo_model_flags_are_one_line_and_exit_2(args, message, capsys):
    assert exit_code(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_full_size_refuses_a_non_empty_out_before_building(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo-model", "--full-size", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: --out: {tmp_path} must be a new or empty folder\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def exit_code(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own checks (choices) exit from the parser, as from the command line
        return exc.code
