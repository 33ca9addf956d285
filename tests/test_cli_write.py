"""The CLI's writer: `write` prints one JSON object; `generate --enhance` records whether its prompt was written."""

from __future__ import annotations

import json

from adgen.__main__ import main
from adgen.metadata import read_params


def test_write_prints_the_json_and_exits_1_when_nothing_usable_was_written(capsys):
    args = ["write", "--product", "제주 감귤 탄산수", "--features", "제로 슈거", "--job", "copy", "--n", "2",
            "--seed", "9", "--model", "demo", "--quiet"]
    assert main(args) == 1  # the demo model's random weights never answer usably
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert {"job", "texts", "usable", "model", "seconds"} <= set(report)
    assert report["job"] == "copy" and report["texts"] == [] and report["usable"] is False
    assert report["model"] == "demo model (random weights)" and not report["cached"]
    assert "could not write usable text" in err and "random" in err
    assert main(args) == 1 and json.loads(capsys.readouterr().out)["cached"] is True  # the same answer, cached


def test_write_refuses_bad_input_in_one_line(capsys):
    assert main(["write", "--product", "x", "--job", "copy", "--n", "0", "--model", "demo"]) == 2
    assert capsys.readouterr().err.strip() == "error: --n: must be from 1 to 8 (got 0)"
    assert main(["write", "--product", "x", "--job", "copy", "--preset", "nope", "--model", "demo"]) == 2
    assert capsys.readouterr().err.startswith("error: --preset: unknown style 'nope'")


def test_generate_enhance_keeps_the_template_prompt_when_not_usable_and_says_so(tmp_path, capsys):
    args = ["generate", "--product", "Lamp", "--size", "256x256", "--steps", "1", "--seed", "4", "--enhance",
            "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["written_prompt"]["usable"] is False
    assert "--enhance: the writer could not write usable text" in err and "template prompt stays" in err
    params = read_params(report["images"][0])
    assert params["prompt_written"] is False and params["prompt_override"] is None
    assert main([*args, "--prompt", "mine"]) == 2
    assert "give --prompt or --enhance, not both" in capsys.readouterr().err


def test_write_scenes_runs_for_generate_and_campaign_and_contradicting_flags_are_refused(tmp_path, capsys):
    base = ["--product", "Lamp", "--seed", "4", "--write-scenes", "--quiet"]
    assert main(["generate", *base, "--size", "256x256", "--steps", "1", "--count", "2", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["written_variations"]["usable"] is False
    assert "--write-scenes: the writer could not write usable text" in err and "own scene variations" in err
    assert main(["campaign", *base, "--channels", "display_300x250", "--variants", "2", "--out",
                 str(tmp_path / "c")]) == 0  # the campaign command has no --enhance: it must not need one
    assert json.loads(capsys.readouterr().out)["written_variations"]["usable"] is False
    assert main(["generate", *base, "--same-scene", "--out", str(tmp_path)]) == 2
    assert "--same-scene: --same-scene keeps one scene" in capsys.readouterr().err
    assert main(["generate", *base, "--prompt", "mine", "--out", str(tmp_path)]) == 2
    assert "--write-scenes writes scenes for the built prompt" in capsys.readouterr().err
    assert main(["write", "--product", "Lamp", "--job", "prompt", "--n", "5"]) == 2
    assert "error: --n: a prompt job writes one prompt" in capsys.readouterr().err
