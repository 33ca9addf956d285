"""Preset files: one schema, unknown keys refused, errors naming file and field, LoRAs kept in their folders."""

import json

import pytest

from adgen.errors import InputError, PresetError
from adgen.presets import LoraSpec, load_preset, load_presets, resolve_lora_file

GOOD = "label: Neon\ndescription: Neon night look.\nprompt: Neon-lit advert of {subject}.\n"


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
    write(tmp_path, "mono.json", json.dumps({"label": "Mono", "description": "B&W", "prompt": "{subject}, b&w"}))
    presets = load_presets(tmp_path)
    assert set(presets) == {"neon", "mono"}
    assert presets["neon"].render("a lamp") == "Neon-lit advert of a lamp."
    assert (presets["neon"].steps, presets["neon"].width) == (6, 768)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GOOD + "colour: red\n", "colour: unknown field; allowed: label, description, prompt, lora"),
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
        ("label: X\nprompt: '{subject}'\n", "description: Field required"),
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
    write(tmp_path, "neon.json", json.dumps({"label": "N", "description": "d", "prompt": "{subject}"}))
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
