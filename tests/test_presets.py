"""Preset files: one schema, unknown keys refused, errors naming file and field, LoRAs kept in their folders."""

import json

import pytest

from adgen.errors import InputError, PresetError
from adgen.i18n import description, label
from adgen.presets import PROJECT_DIR, LoraSpec, load_preset, load_presets, resolve_lora_file
from adgen.typography import load_text_styles

GOOD = ("label: Neon\nlabel_ko: 네온\ndescription: Neon night look.\ndescription_ko: 네온 밤 분위기.\n"
        "prompt: Neon-lit advert of {subject}.\n")
KO = {"label_ko": "모노", "description_ko": "흑백"}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_presets_load_in_order():
    presets = load_presets()
    assert list(presets)[:3] == ["photo", "anime", "semi_realistic"]
    assert presets["photo"].lora is None
    assert presets["anime"].lora.file == "anime.safetensors"
    assert presets["semi_realistic"].lora.scale == 0.7


def test_a_user_adds_a_style_by_dropping_one_file(tmp_path):
    write(tmp_path, "neon.yaml", GOOD + "steps: 6\nwidth: 768\nheight: 1344\n")
    write(tmp_path, "mono.json", json.dumps({"label": "Mono", "description": "B&W", "prompt": "{subject}, b&w", **KO}))
    presets = load_presets(tmp_path)
    assert set(presets) == {"neon", "mono"}
    assert presets["neon"].render("a lamp") == "Neon-lit advert of a lamp."
    assert (presets["neon"].steps, presets["neon"].width) == (6, 768)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GOOD + "colour: red\n", "colour: unknown field; allowed: label, label_ko, description, description_ko, "
                                  "prompt, lora"),
        (GOOD + "lora: {file: a.safetensors, strength: 1}\n", "lora.strength: unknown field; allowed: file, repo"),
        (GOOD.replace("{subject}", "{product}"), "prompt: must contain {subject} exactly once"),
        (GOOD.replace("{subject}", "{subject} {subject}"), "prompt: must contain {subject} exactly once"),
        (GOOD.replace("{subject}", "{subject"), "prompt: is not a valid template"),
        (GOOD + "lora: {file: ../../etc/evil.safetensors}\n", "lora.file: must be a relative path"),
        (GOOD + "lora: {file: /abs/evil.safetensors}\n", "lora.file: must be a relative path"),
        (GOOD + "lora: {file: style.ckpt}\n", "lora.file: must be a .safetensors file"),
        (GOOD + "lora: {file: style.bin}\n", "pickled weights are never loaded"),
        (GOOD + "lora: {repo: owner/name}\n", "lora: a hub LoRA needs 'weight_name'"),
        (GOOD + "lora: {repo: 'not a repo', weight_name: a.safetensors}\n",
         "lora.repo: must be a Hugging Face repo id"),
        (GOOD + "lora: {file: a.safetensors, repo: o/n, weight_name: a.safetensors}\n", "give exactly one of"),
        (GOOD + "lora: {file: a.safetensors, scale: 3}\n", "lora.scale: Input should be less than or equal to 2"),
        (GOOD + "width: 1000\n", "width: Input should be a multiple of 16"),
        (GOOD + "steps: 0\n", "steps: Input should be greater than or equal to 1"),
        ("label: X\nlabel_ko: 엑스\nprompt: '{subject}'\n", "description: Field required"),
        (GOOD.replace("label_ko: 네온\n", ""), "label_ko: Field required (the Korean label, shown when the page"),
        (GOOD.replace("description_ko: 네온 밤 분위기.\n", ""), "description_ko: Field required (the Korean desc"),
        (GOOD.replace("label_ko: 네온", "label_ko: ''"), "label_ko: String should have at least 1 character"),
        ("- a\n- b\n", "must be a mapping of fields"),
        ("label: [unclosed\n", "cannot be read as YAML"),
        (GOOD + "name: other\n", "name: not a field"),
    ],
)
def test_bad_preset_files_name_file_and_field(tmp_path, text, says):
    path = write(tmp_path, "style.yaml", text)
    with pytest.raises(PresetError) as err:
        load_preset(path)
    assert str(err.value).startswith(f"{path}: ")
    assert says in str(err.value)


def test_bad_file_name_and_empty_folder(tmp_path):
    with pytest.raises(PresetError, match="file name must be lowercase"):
        load_preset(write(tmp_path, "Bad Name.yaml", GOOD))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PresetError, match="no preset files"):
        load_presets(empty)
    with pytest.raises(PresetError, match="presets folder not found"):
        load_presets(tmp_path / "missing")


def test_two_files_for_one_name_are_refused(tmp_path):
    write(tmp_path, "neon.yaml", GOOD)
    write(tmp_path, "neon.json", json.dumps({"label": "N", "description": "d", "prompt": "{subject}", **KO}))
    with pytest.raises(PresetError, match="two files define the preset 'neon'"):
        load_presets(tmp_path)


def test_lora_file_is_found_only_inside_the_allowed_folders(tmp_path):
    allowed, outside = tmp_path / "loras", tmp_path / "secret"
    allowed.mkdir(), outside.mkdir()
    (allowed / "ok.safetensors").write_bytes(b"x")
    (outside / "evil.safetensors").write_bytes(b"x")
    (allowed / "link.safetensors").symlink_to(outside / "evil.safetensors")
    assert resolve_lora_file(LoraSpec(file="ok.safetensors"), [allowed]) == (allowed / "ok.safetensors").resolve()
    with pytest.raises(InputError, match="points outside the allowed LoRA folders"):
        resolve_lora_file(LoraSpec(file="link.safetensors"), [allowed])
    with pytest.raises(InputError, match="not found in the LoRA folders"):
        resolve_lora_file(LoraSpec(file="missing.safetensors"), [allowed])
    assert resolve_lora_file(LoraSpec(file="missing.safetensors"), [allowed], must_exist=False) is None


@pytest.mark.parametrize("loader", [load_presets, load_text_styles])
def test_every_shipped_style_has_korean_and_english_labels(loader):
    items = loader()
    for item in items.values():
        assert label(item, "en") == item.label and description(item, "en") == item.description
        assert label(item, "ko") == item.label_ko != item.label
        assert description(item, "ko-KR") == item.description_ko != item.description
        assert any("\uac00" <= c <= "\ud7a3" for c in item.label_ko + item.description_ko), item.name  # Hangul
    assert len({label(i, "ko") for i in items.values()}) == len(items)  # a Korean page can tell them apart


def test_shipped_korean_labels():
    presets, styles = load_presets(), load_text_styles()
    assert [label(p, "ko") for p in presets.values()] == ["사진", "애니메이션", "세미 리얼"]
    assert [label(s, "ko") for s in styles.values()] == ["3D 입체", "골드", "네온", "굵은 외곽선"]


TEXT_STYLE = "label: B\nlabel_ko: 비\ndescription: d\ndescription_ko: 디\nfill: ['#FFFFFF']\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (TEXT_STYLE.replace("label_ko: 비\n", ""), "bad.yaml: label_ko: Field required (the Korean label"),
        (TEXT_STYLE.replace("description_ko: 디\n", ""), "bad.yaml: description_ko: Field required (the Korean"),
        (TEXT_STYLE + "label_en: B\n", "bad.yaml: label_en: unknown field; allowed: label, label_ko, description, "
                                       "description_ko, fill"),
        (TEXT_STYLE + "stroke: {width: 0.1, colour: '#000000'}\n",
         "bad.yaml: stroke.colour: unknown field; allowed: width, color"),
    ],
)
def test_text_styles_need_korean_labels_too(tmp_path, text, says):
    write(tmp_path, "bad.yaml", text)
    with pytest.raises(PresetError) as err:
        load_text_styles(tmp_path)
    assert says in str(err.value)


def test_readme_example_preset_is_valid(tmp_path):
    """The docs' example preset (docs/app.md) is what a user copies: it must load (Korean fields included)."""
    readme = (PROJECT_DIR / "docs" / "app.md").read_text(encoding="utf-8")
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    preset = load_preset(write(tmp_path, "neon.yaml", block.replace("file: neon.safetensors", "file: n.safetensors")))
    assert preset.label_ko and preset.description_ko
