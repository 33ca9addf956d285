"""The embedded demo model: a tiny, randomly initialised pipeline of exactly ZIT's classes.

It lets AdGen (and its tests) run the real diffusers code without the 20 GB of weights:
`ZImageTransformer2DModel`, a 16-channel `AutoencoderKL` downsampling 8x, `Qwen3Model`, a
`Qwen2Tokenizer` trained here with `tokenizers` (with a chat template, which the pipeline
applies), and `FlowMatchEulerDiscreteScheduler` with ZIT's scheduler config. It is built from a
fixed seed in about a second into a folder, then loaded with `ZImagePipeline.from_pretrained`
like the real model. Its images are noise.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

DEMO_VERSION = 2  # 2: the text encoder's config ties its embeddings, as Qwen3-4B's (the writer's head)
DEMO_LABEL = "demo model (random weights)"
MARKER = "ADGEN_DEMO_MODEL.json"  # from_pretrained ignores it; AdGen reads it to say "demo"
DEMO_LORAS = ("anime", "semi_realistic")
SEED = 20251126

# Tongyi-MAI/Z-Image-Turbo scheduler/scheduler_config.json.
ZIT_SCHEDULER = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False}
# ZIT's transformer RoPE lengths: caption positions (up to 512 tokens) then the image grid.
# With patch 2 and 8x VAE, 2048 px is 128 positions per side, well inside 512.
ZIT_AXES_LENS = [1536, 512, 512]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n"
    "{%- if enable_thinking is defined and not enable_thinking -%}<think>\n\n</think>\n\n{%- endif -%}"
    "{%- endif -%}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# A little advertising vocabulary in both languages, so the tokenizer has real merges.
CORPUS = """Professional commercial product photograph studio lighting soft shadows sharp focus high
detail photorealistic advertising quality anime style illustration clean line art cel shading
vibrant colours semi realistic digital painting cinematic light rich texture the product is the
hero of the image centred fully visible no people no faces no hands brand colours scene mood
headline sparkling water cosmetics skincare sneakers coffee tea chocolate smartphone summer sale
제품 광고 사진 스튜디오 조명 부드러운 그림자 선명한 초점 고품질 브랜드 색상 여름 세일 신제품 출시
상쾌한 탄산수 화장품 스킨케어 운동화 커피 초콜릿 할인 무료 배송 한정 판매 특가 새로운 맛""".split()


def is_demo_model(path: Path | str) -> bool:
    return (Path(path) / MARKER).is_file()


def ensure_demo_model(cache_dir: Path | str) -> Path:
    """The demo model's folder under `cache_dir`, built there first if missing (atomically)."""
    target = Path(cache_dir) / f"demo-model-v{DEMO_VERSION}"
    if is_demo_model(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        build_demo_model(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first; theirs is identical
            if not is_demo_model(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_demo_model(out: Path | str) -> Path:
    """Write the demo pipeline (and its LoRAs) to `out`; loadable with ZImagePipeline.from_pretrained(out)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    out = Path(out)
    tokenizer = build_tokenizer()
    with torch.random.fork_rng(devices=[]):  # a fixed seed without touching the caller's RNG
        torch.manual_seed(SEED)
        transformer = ZImageTransformer2DModel(
            all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=2, n_refiner_layers=1,
            n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True, cap_feat_dim=16, rope_theta=256.0,
            t_scale=1000.0, axes_dims=[8, 4, 4], axes_lens=ZIT_AXES_LENS,
        )
        with torch.no_grad():  # these two start as torch.empty: give them defined values
            transformer.x_pad_token.fill_(1.0)
            transformer.cap_pad_token.fill_(1.0)
        vae = AutoencoderKL(  # 4 blocks -> 8x downsampling and 16 latent channels, as ZIT's (FLUX) VAE
            in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[8, 8, 16, 16], layers_per_block=1,
            latent_channels=16, norm_num_groups=8, sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159,
            use_quant_conv=False, use_post_quant_conv=False,
        )
        text_encoder = Qwen3Model(Qwen3Config(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=4096,
            tie_word_embeddings=True,  # as Qwen3-4B: the writer's output head is the embedding matrix
        ))
    scheduler = FlowMatchEulerDiscreteScheduler(**ZIT_SCHEDULER)
    pipe = ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          transformer=transformer)
    pipe.save_pretrained(out)
    for name in DEMO_LORAS:
        build_demo_lora(out, name)
    (out / MARKER).write_text(json.dumps({"adgen_demo_model": DEMO_VERSION, "label": DEMO_LABEL}) + "\n")
    return out


def build_tokenizer():
    """A byte-level BPE `Qwen2Tokenizer` (ZIT's tokenizer class) trained on CORPUS, with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=1024, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=SPECIAL_TOKENS, show_progress=False)
    bpe.train_from_iterator(CORPUS, trainer)
    merges = [tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=bpe.get_vocab(), merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def demo_lora_path(model_dir: Path | str, name: str) -> Path:
    """The demo model's tiny LoRA for style `name`, built on first use (any preset name works)."""
    path = Path(model_dir) / "loras" / f"{name}.safetensors"
    if not path.is_file():
        build_demo_lora(Path(model_dir), name)
    return path


def build_demo_lora(model_dir: Path, name: str) -> Path:
    """A rank-4 LoRA on the demo transformer's attention, seeded by the style name."""
    import torch
    from diffusers import ZImagePipeline, ZImageTransformer2DModel
    from peft import LoraConfig, get_peft_model_state_dict

    transformer = ZImageTransformer2DModel.from_pretrained(model_dir / "transformer")
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                           target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    folder = model_dir / "loras"
    folder.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".building-"))
    try:
        ZImagePipeline.save_lora_weights(staging, transformer_lora_layers=get_peft_model_state_dict(transformer),
                                         weight_name=f"{name}.safetensors")
        (staging / f"{name}.safetensors").replace(folder / f"{name}.safetensors")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / f"{name}.safetensors"
