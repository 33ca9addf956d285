"""The campaign, batch and channels commands: one JSON object on stdout, errors on stderr, exit codes."""

import hashlib
import json
import zipfile

import pytest
from PIL import Image

from adgen.__main__ import main

from conftest import ROOT

PHOTO = str(ROOT / "docs" / "example-product.png")


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_campaign_writes_channel_files_manifest_and_zip(tmp_path, capsys):
    out = tmp_path / "campaign"
    code, stdout, err = run(["campaign", "--product", "Citrus sparkling water", "--copy", "여름 한정",
                             "--image", PHOTO, "--channels", "instagram_story,display_728x90,marketplace_white",
                             "--variants", "2", "--background", "packshot", "--brand", "citrus", "--seed", "3",
                             "--out", str(out), "--zip", "--quiet"], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert set(report) == {"files", "manifest", "zip", "checks", "seconds"}
    names = [f"{c}-v{v}.png" for v in (1, 2) for c in ("instagram_story", "display_728x90", "marketplace_white")]
    assert report["files"] == [str(out / n) for n in names]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["brand"]["name"] == "Citrus Co." and manifest["product"]["copy"] == "여름 한정"
    for entry in manifest["files"]:
        data = (out / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert list(Image.open(out / entry["file"]).size) == entry["size"]
    with zipfile.ZipFile(report["zip"]) as archive:
        assert sorted(archive.namelist()) == sorted(names + ["manifest.json"])


def test_campaign_flags_are_checked_before_any_work(tmp_path, capsys):
    out = tmp_path / "never"
    for argv, message in (
        (["--channels", "instagram_square,tiktok"], "error: --channels: unknown 'tiktok'; choose one of instagram_"),
        (["--channels", "instagram_square", "--variants", "9"], "error: --variants: must be from 1 to 8 (got 9)"),
        (["--channels", "instagram_square", "--brand", "citrus", "--logo", PHOTO], "error: --brand: give --brand NAME"),
        (["--channels", "instagram_square", "--brand-colors", "orange"], "error: --brand-colors: must be hex colours"),
        (["--channels", "instagram_square", "--font", PHOTO], "error: --font: must be a .ttf or .otf font file"),
        (["--channels", "instagram_square,marketplace_white"], "error: --channels: Marketplace main image (white) "
                                                               "has a pure white background around the product: it "
                                                               "needs a product photo"),
    ):
        code, stdout, err = run(["campaign", "--product", "x", "--out", str(out), *argv], capsys)
        assert (code, stdout) == (2, "") and err.startswith(message) and err.count("\n") == 1, err
    assert not out.exists()


def test_channels_lists_every_channel(capsys):
    code, stdout, _ = run(["channels", "--json"], capsys)
    channels = json.loads(stdout)
    assert code == 0 and channels["display_728x90"]["width"] == 728
    assert channels["display_728x90"]["generation_size"] == [2048, 256]
    assert channels["instagram_story"]["safe_zone"]["top"] == 0.14
    code, stdout, _ = run(["channels"], capsys)
    assert code == 0 and "marketplace_white" in stdout and "2000x2000" in stdout


def write_csv(path, text: str, bom: bool = True) -> None:
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())


def test_batch_runs_every_good_row_and_reports_the_bad_ones(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    Image.open(PHOTO).save(tmp_path / "photos" / "bottle.png")
    sheet = tmp_path / "products.csv"
    write_csv(sheet, "name,copy,features,image\n"
                     "탄산수,여름 한정,\"레몬, 제로\",photos/bottle.png\n"
                     ",no name,,photos/bottle.png\n"
                     "Citrus Tea,Fresh,,photos/missing.png\n"
                     "Green Tea,Calm,,photos/bottle.png\n")
    code, stdout, err = run(["batch", str(sheet), "--channels", "instagram_square,display_300x250",
                             "--background", "packshot", "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 1
    report = json.loads(stdout)
    assert [r["row"] for r in report["rows"]] == [2, 5]
    assert [r["name"] for r in report["rows"]] == ["탄산수", "Green Tea"]
    assert [f["row"] for f in report["failed"]] == [3, 4]
    assert 'error: row 3, column "name": must not be empty' in err
    assert 'error: row 4, column "image": file not found' in err
    assert "2 of 4 rows failed: rows 3, 4" in err
    for row in report["rows"]:
        manifest = json.loads(open(row["manifest"], encoding="utf-8").read())
        assert [f["channel"] for f in manifest["files"]] == ["instagram_square", "display_300x250"]


def test_batch_exit_0_when_all_rows_succeed_and_2_for_an_unusable_file(tmp_path, capsys, monkeypatch):
    import adgen.brand
    import adgen.channels

    reads = []  # the flags' files are read once per batch, not once per row
    for module, name in ((adgen.channels, "load_channels"), (adgen.brand, "brand_of")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _real=real, _name=name, **k: (reads.append(_name), _real(*a, **k))[1])
    sheet = tmp_path / "ok.csv"
    write_csv(sheet, f"name,image\nA,{PHOTO}\nB,{PHOTO}\n", bom=False)
    code, stdout, err = run(["batch", str(sheet), "--channels", "display_320x50", "--background", "packshot",
                             "--brand", "citrus", "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and json.loads(stdout)["failed"] == [] and len(json.loads(stdout)["rows"]) == 2
    assert sorted(reads) == ["brand_of", "load_channels"]
    assert "rows" not in err  # stderr is no terminal (a log file): no progress bar drawn into it
    for text, message in (("nom,copy\nA,b\n", "column 'nom' is not known"), ("copy\nb\n", 'no "name" column'),
                          ("name\n", "no product rows"), (b"name\n\xff\xfe bad".decode("latin-1"), "not UTF-8")):
        bad = tmp_path / "bad.csv"
        bad.write_bytes(text.encode("latin-1") if message == "not UTF-8" else text.encode())
        code, stdout, err = run(["batch", str(bad), "--channels", "display_320x50", "--out", str(tmp_path / "o2")],
                                capsys)
        assert (code, stdout) == (2, "") and message in err, err


@pytest.mark.parametrize("flag", ["--same-scene"])
def test_generate_takes_the_new_flags(tmp_path, capsys, flag):
    code, stdout, err = run(["generate", "--product", "x", "--image", PHOTO, "--background", "packshot",
                             "--packshot", "white", "--copy", "Fresh", flag, "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0, err
    image = Image.open(json.loads(stdout)["images"][0])
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_the_readmes_first_command_makes_the_ad_it_shows(tmp_path, capsys):
    """Run as written in README.md (with --out in a temp folder): a real-looking packshot ad, the one shown."""
    import re
    import shlex

    import numpy as np

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = re.search(r"^pip install -r requirements.txt && (python -m adgen generate .*)$", readme, re.M).group(1)
    args = shlex.split(line)[3:]
    args[args.index("--out") + 1] = str(tmp_path)
    assert main([*args, "--quiet"]) == 0, capsys.readouterr().err  # `python -m adgen` is main() (test_cli checks it)
    made = np.asarray(Image.open(json.loads(capsys.readouterr().out)["images"][0]).convert("RGB"), dtype=np.int16)
    shown = np.asarray(Image.open(ROOT / "docs" / "example-packshot.png").convert("RGB"), dtype=np.int16)
    assert made.shape == shown.shape and np.abs(made - shown).mean() < 1.0  # fonts may differ by a hair
    assert made[:40, :40].std(axis=(0, 1)).max() < 4  # a smooth studio backdrop, not noise


def test_batch_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path):
    """A quoted cell spanning lines is one spreadsheet row; a blank line is a row too."""
    from adgen.__main__ import read_batch

    sheet = tmp_path / "rows.csv"
    write_csv(sheet, 'name,copy\nA,"two\nlines"\nB,x\n\nC,y\n')
    assert [(n, v["name"]) for n, v in read_batch(sheet)] == [(2, "A"), (3, "B"), (5, "C")]


def test_batch_refuses_bad_flags_once_before_any_row(tmp_path, capsys):
    sheet = tmp_path / "ok.csv"
    write_csv(sheet, f"name,image\nA,{PHOTO}\nB,{PHOTO}\n")
    code, stdout, err = run(["batch", str(sheet), "--channels", "tiktok", "--out", str(tmp_path / "out")], capsys)
    assert (code, stdout) == (2, "") and err.count("\n") == 1 and err.startswith("error: --channels: unknown 'tiktok'")
    assert not (tmp_path / "out").exists()
