"""The writer: ad copy, scene prompts and scene variations from the loaded Qwen3 text encoder, no new weights.

Z-Image-Turbo's text encoder is Qwen3-4B's body (`Qwen3Model`) and Qwen3-4B ties its input and output
embeddings, so `last_hidden_state @ embed_tokens.weight.T` is the causal LM's own next-token logits: the
writer reads the loaded encoder and its embedding matrix, makes no parameter and loads no file. It runs as
a job on the engine's one GPU queue (progress in tokens, Stop at the next token, every memory mode),
samples with a seeded CPU generator (same inputs + seed, same text), and caches its answers on disk
keyed like images. What it writes is checked (`answers`): an answer that fails every try is reported as
"not usable", and the template prompt stays in use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .answers import language_of, parse_copy, parse_prompt, parse_variations, product_details
from .errors import InputError, ModelError, PresetError
from .jobs import Job
from .memory import onloaded
from .presets import PROJECT_DIR, get_preset, load_folder, read_fields, schema_error
from .prompts import COPY_SPACE, PRODUCT_FOCUS, build_prompt
from .request import MAX_SEED, AdRequest, Product, check_int, image_key, random_seed

WRITER_VERSION = 2  # in the cache key: a change to sampling or parsing must not serve old answers
JOBS = ("copy", "prompt", "variations")
MAX_TEXTS = 8
DEFAULT_TEXTS = 3
WRITER_DIR = PROJECT_DIR / "presets" / "writer"
PLACEHOLDERS = {"details", "n", "style", "base_prompt", "headline_max", "subline_max"}
NOT_USABLE = "could not write usable text"
# Lengths asked of the model (headline, sub-line), tighter than the copy fields' limits (request.COPY_LIMITS),
# which the answers are checked against: a Korean character is about two Latin ones wide.
ASKED_LENGTHS = {"ko": (20, 40), "en": (40, 80)}


class Languages(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    en: str = Field(min_length=1, max_length=4000)
    ko: str = Field(min_length=1, max_length=4000)

    @field_validator("en", "ko")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        import string

        try:
            names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise ValueError(f"is not a valid template ({exc}); write literal braces as {{{{ }}}}") from None
        if names - PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {sorted(names - PLACEHOLDERS)[0]!r}; allowed: "
                             f"{', '.join(sorted(PLACEHOLDERS))}")
        return value


class Instructions(BaseModel):
    """One writer job's instructions (`presets/writer/JOB.yaml`): chat messages in both languages and sampling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: str
    system: Languages
    user: Languages
    max_new_tokens: Annotated[int, Field(ge=8, le=2048)] = 256
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.8  # 0: greedy
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    top_k: Annotated[int, Field(ge=1, le=1000)] = 40
    tries: Annotated[int, Field(ge=1, le=5)] = 3  # bounded: a model that keeps answering badly is given up on
    order: int = 100

    def messages(self, lang: str, **values: object) -> list[dict[str, str]]:
        return [{"role": "system", "content": getattr(self.system, lang).format(**values)},
                {"role": "user", "content": getattr(self.user, lang).format(**values)}]


def load_instruction(path: Path) -> Instructions:
    """Read and check one instructions file; errors name the file and the field."""
    if path.stem not in JOBS:
        raise PresetError(f"{path}: the file name must be one of the writer jobs {', '.join(JOBS)}")
    data = read_fields(path, "system, user, max_new_tokens, ...")
    try:
        return Instructions(job=path.stem, **data)
    except ValidationError as exc:
        raise schema_error(path, exc, lambda loc: [f for f in Instructions.model_fields if f != "job"]) from None


def load_instructions(directory: Path | str | None = None) -> dict[str, Instructions]:
    """Every job's instructions; a missing job is an error (the writer never runs without its instructions)."""
    found = load_folder(directory or WRITER_DIR, load_instruction, "writer instruction", "job")
    missing = [job for job in JOBS if job not in found]
    if missing:
        raise PresetError(f"{directory or WRITER_DIR}: no instructions for the writer job {missing[0]!r} "
                          f"({missing[0]}.yaml)")
    return found


def _instructions() -> dict[str, Instructions]:
    """The writer's instructions, read again only when a file in `WRITER_DIR` changed (not on every job)."""
    folder = Path(WRITER_DIR)
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*.yaml")))
    if _read.get("key") != (folder, stamp):
        _read.update(key=(folder, stamp), value=load_instructions(folder))
    return _read["value"]


_read: dict = {}


@dataclass(frozen=True)
class WriteRequest:
    """What to write: for a product, `n` texts of one job, in a style, from a seed."""

    product: Product
    job: str = "copy"
    n: int | None = None  # None: 3 suggestions or scenes; a prompt is always one
    seed: int | None = None  # None: a random seed, chosen once and reported
    preset: str = "photo"
    product_focus: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.product, Product):
            raise InputError("product", "must be a Product")
        if self.job not in JOBS:
            raise InputError("writer job", f"must be one of {', '.join(JOBS)} (got {self.job!r})")
        if self.job == "prompt":
            if self.n not in (None, 1):
                raise InputError("text count", f"a prompt job writes one prompt; leave the count out (got {self.n!r})")
            n = 1
        else:
            n = DEFAULT_TEXTS if self.n is None else check_int("text count", self.n, 1, MAX_TEXTS)
        object.__setattr__(self, "n", n)
        if self.seed is not None:
            object.__setattr__(self, "seed", check_int("seed", self.seed, 0, MAX_SEED))

    def resolved(self) -> WriteRequest:
        return self if self.seed is not None else dataclasses.replace(self, seed=random_seed())


@dataclass(frozen=True)
class Written:
    """What the writer wrote: `texts` (copy: "HEADLINE\\nSUB-LINE"; prompt: one full prompt; variations: scenes)."""

    job: str
    texts: tuple[str, ...]
    usable: bool
    model: str
    demo: bool
    seed: int
    seconds: float
    cached: bool = False
    tokens: int = 0  # tokens sampled (0 for a cache hit)
    reason: str = ""  # why not usable
    raw: tuple[str, ...] = field(default=(), repr=False)  # the model's answers as written, one per try

    @property
    def copies(self) -> list[tuple[str, str]]:
        """The copy job's suggestions as (headline, sub-line)."""
        return [tuple((text.split("\n", 1) + [""])[:2]) for text in self.texts]  # type: ignore[misc]

    def to_json(self) -> dict:
        return {"job": self.job, "texts": list(self.texts), "usable": self.usable, "model": self.model,
                "seconds": round(self.seconds, 3), "seed": self.seed, "cached": self.cached, "tokens": self.tokens,
                "demo": self.demo, **({"reason": self.reason} if self.reason else {})}


def tied_embedding(encoder) -> torch.nn.Embedding:
    """The encoder's input embedding, which is its output head when the config ties them; refused otherwise."""
    config = encoder.config
    if not getattr(config, "tie_word_embeddings", False):
        raise ModelError(f"writer: the text encoder ({type(encoder).__name__}) does not tie its input and output "
                         "embeddings (tie_word_embeddings is false in its config.json), so its embedding matrix is "
                         "not its output head; the writer needs a tied model such as Qwen3-4B")
    return encoder.get_input_embeddings()


class Sampler:
    """Next tokens from the loaded encoder: KV cache, the tied head, seeded top-k/top-p sampling on the CPU."""

    def __init__(self, encoder, tokenizer, instructions: Instructions, device: torch.device):
        self.encoder, self.tokenizer, self.device = encoder, tokenizer, device
        self.head = tied_embedding(encoder)
        self.settings = instructions
        self.vocab = len(tokenizer)  # rows past the tokenizer's vocabulary are padding: never sampled
        self.stops = {tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        self.stops = (self.stops | {tokenizer.eos_token_id}) - {None, tokenizer.unk_token_id}

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """float32 next-token logits on the CPU; the head's weight is onloaded where an offload mode keeps it away."""
        with onloaded(self.head):
            weight = self.head.weight
            logits = torch.nn.functional.linear(hidden.to(weight.device, weight.dtype), weight)
        return logits[0, : self.vocab].float().cpu()

    def pick(self, logits: torch.Tensor, generator: torch.Generator) -> int:
        if self.settings.temperature == 0:
            return int(logits.argmax())
        top, ids = torch.topk(logits / self.settings.temperature, min(self.settings.top_k, logits.numel()))
        probs = torch.softmax(top, dim=-1)
        keep = (torch.cumsum(probs, -1) - probs) < self.settings.top_p  # the nucleus, always the first token
        probs = probs * keep
        return int(ids[torch.multinomial(probs / probs.sum(), 1, generator=generator)])

    def run(self, prompt_ids: list[int], seed: int, job: Job, progress, done: int, total: int,
            until_stop: bool = True) -> tuple[str, int]:
        """(text, tokens) of one answer; `done`/`total` place its tokens in the job's progress.

        `until_stop=False` samples all `max_new_tokens` (the benchmark's fixed-length timing)."""
        from transformers import DynamicCache

        limit = getattr(self.encoder.config, "max_position_embeddings", None)
        budget = self.settings.max_new_tokens
        if limit and len(prompt_ids) + budget > limit:
            raise InputError("product", f"the details are too long for the writer ({len(prompt_ids)} tokens with "
                             f"its instructions, {limit - budget} allowed); shorten them")
        generator = torch.Generator("cpu").manual_seed(seed)
        cache, out = DynamicCache(), []
        ids = torch.tensor([prompt_ids], device=self.device)
        with torch.inference_mode():
            for i in range(budget):
                job.check(done + i, total)  # Stop ends the job at the next token
                hidden = self.encoder(input_ids=ids, past_key_values=cache, use_cache=True).last_hidden_state
                token = self.pick(self.logits(hidden[:, -1]), generator)
                if progress:
                    progress(done + i + 1, total)
                if token in self.stops and until_stop:
                    break
                out.append(token)
                ids = torch.tensor([[token]], device=self.device)
        return self.tokenizer.decode(out, skip_special_tokens=False), len(out)


@dataclass(frozen=True)
class Plan:
    """A writer job made concrete: the resolved request, its instructions, chat messages and cache key."""

    request: WriteRequest
    instructions: Instructions
    messages: list[dict[str, str]]
    key: str
    lang: str
    details: str


def plan(engine, request: WriteRequest) -> Plan:
    """The messages the model reads for `request` and the key its answer is cached under (nothing runs)."""
    request = request.resolved()
    instructions = _instructions()[request.job]
    preset = get_preset(engine.presets, request.preset)
    lang = language_of(request.product)
    details = product_details(request.product)
    base = build_prompt(dataclasses.replace(request.product, copy=""), preset, product_focus=False)
    messages = instructions.messages(lang, details=details, n=request.n, style=preset.description,
                                     base_prompt=base, headline_max=ASKED_LENGTHS[lang][0],
                                     subline_max=ASKED_LENGTHS[lang][1])
    key = image_key(kind="writer", version=WRITER_VERSION, model=engine.model_fingerprint(), job=request.job,
                    n=request.n, seed=request.seed, messages=messages, focus=request.product_focus,
                    sampling=instructions.model_dump(exclude={"system", "user", "order"}), numerics=engine.numerics())
    return Plan(request, instructions, messages, key, lang, details)


def write(engine, request: WriteRequest, progress=None, use_cache: bool = True, job: Job | None = None) -> Written:
    """`request.n` texts of `request.job` for a product, from the engine's loaded text encoder (or its cache)."""
    start = time.perf_counter()
    engine.check_download()  # as generate: never park a worker for 33 GB
    work = plan(engine, request)
    cache = engine.cache if use_cache else None
    answers = recall(cache, work)
    if answers is not None:  # checked again with today's checks (claims, parsing)
        return written_of(engine, work, answers, start, cached=True)
    result = sample(engine, work, progress, job, start)
    remember(cache, work, result.raw)
    return result


def sample(engine, work: Plan, progress=None, job: Job | None = None, start: float | None = None) -> Written:
    """Run the model for a planned job (no cache): on this engine, or on the Ray worker a front end sent it to."""
    start = time.perf_counter() if start is None else start
    request, instructions = work.request, work.instructions
    total = instructions.tries * instructions.max_new_tokens
    answers: list[str] = []

    def run(pipe) -> int:
        engine.writes += 1
        sampler = Sampler(pipe.text_encoder, pipe.tokenizer, instructions, pipe._execution_device)
        prompt = pipe.tokenizer.apply_chat_template(work.messages, tokenize=False, add_generation_prompt=True,
                                                    enable_thinking=False)  # Qwen3: no thinking block
        prompt_ids = pipe.tokenizer(prompt, add_special_tokens=False).input_ids
        texts: list[str] = []
        sampled = 0
        for attempt in range(instructions.tries):
            raw, tokens = sampler.run(prompt_ids, try_seed(request.seed, attempt), running, progress,
                                      attempt * instructions.max_new_tokens, total)
            sampled += tokens
            answers.append(raw)
            texts = _merge(texts, _parse(request, raw, work.details, work.lang))
            if len(texts) >= request.n:
                break
        return sampled

    with engine.jobs.open(job=job) as running:
        sampled = engine.exclusive(running, run, total, writing=True)
    return written_of(engine, work, answers, start, tokens=sampled)


def recall(cache, work: Plan) -> list[str] | None:
    """The model's raw answers to `work` from the result cache (None: not there, or not a list of strings)."""
    hit = cache.get_json(work.key) if cache else None
    if hit is not None and isinstance(hit.get("raw"), list) and all(isinstance(r, str) for r in hit["raw"]):
        return hit["raw"]
    return None


def remember(cache, work: Plan, answers: list[str]) -> None:
    """Keep the model's raw answers (not the parsed texts: a stricter checker applies to them at once)."""
    if cache:
        cache.put_json(work.key, {"key": work.key, "raw": list(answers)})


def written_of(engine, work: Plan, answers: list[str], start: float, cached: bool = False, tokens: int = 0) -> Written:
    """The `Written` of the model's `answers` to `work`: parsed, checked and merged across tries."""
    request = work.request
    texts: list[str] = []
    for raw in answers:
        texts = _merge(texts, _parse(request, raw, work.details, work.lang))
    need = request.n if request.job == "variations" else 1  # every image needs its scene; copy: any suggestion
    usable = len(texts) >= need
    texts = texts[: request.n] if usable else []
    if usable and request.job == "prompt" and request.product_focus:
        texts = [f"{texts[0]} {PRODUCT_FOCUS}"]
    reason = "" if usable else f"{NOT_USABLE} in {len(answers)} tries"
    return Written(request.job, tuple(texts), usable, engine.source.label, engine.source.is_demo, request.seed,
                   time.perf_counter() - start, cached=cached, tokens=tokens, reason=reason, raw=tuple(answers))


def try_seed(seed: int, attempt: int) -> int:
    """The sampling seed of try `attempt`: mixed, so seed s's second try is not seed s+1's first."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{attempt}".encode()).digest()[:4], "big")


def _parse(request: WriteRequest, raw: str, details: str, lang: str) -> list[str]:
    if request.job == "copy":
        return [f"{h}\n{s}" if s else h for h, s in parse_copy(raw, details, lang, request.n)]
    if request.job == "prompt":
        prompt = parse_prompt(raw, details, request.product_focus)
        return [prompt] if prompt else []
    return parse_variations(raw, details, request.product_focus, request.n)


def _merge(texts: list[str], more: list[str]) -> list[str]:
    """`texts` then the new ones not already there (case-insensitive): tries add up to the n asked for."""
    seen = {t.casefold() for t in texts}
    return texts + [t for t in more if t.casefold() not in seen and not seen.add(t.casefold())]



def enhance(engine, request: AdRequest, progress=None, job: Job | None = None,
            use_cache: bool = True) -> tuple[AdRequest, Written]:
    """`request` with a prompt the writer wrote for its product (recorded as written), or unchanged when the
    answer was not usable: the template prompt then stays in use. The request's seed seeds the writer too."""
    request = request.resolved()
    written = engine.write(WriteRequest(request.product, "prompt", 1, request.seed, request.preset,
                                        request.product_focus), progress, use_cache, job)
    if not written.usable:
        return request, written
    prompt = written.texts[0]
    if request.product.copy:  # the copy is drawn as its own layer: ask for calm space for it, as the template does
        prompt = f"{prompt} {COPY_SPACE}"
    return dataclasses.replace(request, prompt=prompt, enhanced=True), written


def with_scenes(engine, request: AdRequest, n: int, progress=None, job: Job | None = None,
                use_cache: bool = True) -> tuple[AdRequest, Written]:
    """`request` with `n` scene variations written for its product ("Different scenes"): image or variant i uses
    scene i. Unchanged (the style's own variations) when the answer was not usable."""
    request = request.resolved()
    written = engine.write(WriteRequest(request.product, "variations", n, request.seed, request.preset,
                                        request.product_focus), progress, use_cache, job)
    if not written.usable:
        return request, written
    return dataclasses.replace(request, scenes=written.texts, variation=0, same_scene=False), written
