"""Which transformer layers stay in bf16 under fp8: `python -m bench.quant_layers` (CPU, a few minutes).

ZIT's transformer at its real widths (dim 3840, 30 heads, caption width 2560) but reduced depth (2 main
blocks, 1 refiner of each kind: the full 6.15B model does not fit this 24 GB shared machine in a form the
CPU can run), seeded weights as in `adgen.synthetic`. One forward at 256² with a 64-token caption in bf16,
unquantized, then with float8 weights (the CPU scheme) on each group of layers; each row is the relative
L2 error of the output against unquantized, and the share of the weights that group holds.
"""

from __future__ import annotations

import time

import torch

from adgen import quantize
from adgen.synthetic import FULL_SIZE, SEED, _default_dtype, _initialise, _lists, scaled

GROUPS = {  # a module's full name -> its group
    "attention + feed-forward (quantized)": lambda n: quantize.quantizable(n + ".weight"),
    "adaLN modulation": lambda n: "adaLN_modulation" in n,
    "final layer": lambda n: "final_layer" in n,
    "x / caption / timestep embedders": lambda n: any(k in n for k in ("x_embedder", "cap_embedder", "t_embedder")),
}


def build(dtype=torch.bfloat16):
    from diffusers import ZImageTransformer2DModel

    config = scaled(FULL_SIZE, transformer={"n_layers": 2, "n_refiner_layers": 1})
    with _default_dtype(dtype), torch.device("meta"):
        transformer = ZImageTransformer2DModel(**_lists(config.transformer))
    transformer.to_empty(device="cpu")
    _initialise(transformer, torch.Generator().manual_seed(SEED))
    return transformer.eval()


def run(transformer, inputs) -> torch.Tensor:
    with torch.no_grad():
        return transformer(*inputs, return_dict=False)[0][0].float()


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = ([torch.randn(16, 1, 32, 32, generator=generator).to(torch.bfloat16)], torch.tensor([0.5]),
              [torch.randn(64, 2560, generator=generator).to(torch.bfloat16)])
    reference_model = build()
    total = sum(p.numel() for p in reference_model.parameters())
    reference = run(reference_model, inputs)
    del reference_model
    print("| layers in float8 | share of weights | relative L2 error vs bf16 |\n| --- | --- | --- |")
    choices = {**{name: [name] for name in GROUPS}, "all linear layers (naive)": list(GROUPS)}
    for label, groups in choices.items():
        start = time.perf_counter()
        model = build()
        chosen = [g for name, g in GROUPS.items() if name in groups]
        share = sum(m.weight.numel() for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and any(g(n) for g in chosen)) / total
        from torchao.quantization import quantize_

        quantize_(model, quantize.config_of("float8-weight"),
                  filter_fn=lambda m, n, chosen=chosen: isinstance(m, torch.nn.Linear) and any(g(n) for g in chosen))
        out = run(model, inputs)
        error = ((out - reference).norm() / reference.norm()).item()
        print(f"| {label} | {share * 100:.1f}% | {error:.4f} |  ({time.perf_counter() - start:.0f} s)", flush=True)
        del model


if __name__ == "__main__":
    main()
