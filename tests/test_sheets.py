"""Spreadsheets as Korean marketers save them (issue 21): CP949 CSV from Korean Excel, UTF-16 "Unicode text", .xlsx,
Korean headers, semicolons, empty trailing columns, CR+LF inside cells; old .xls and .numbers refused in one line;
and the CLI in Korean under a Korean locale."""

import codecs
import io
import json
import zipfile

import pytest
from openpyxl import Workbook

from adgen.__main__ import COLUMN_ALIASES, CSV_COLUMNS, main
from adgen.cli_text import cli_lang, translate
from adgen.sheets import SheetError, read_sheet

from conftest import ROOT


def zip_not_a_workbook() -> bytes:
    """A ZIP holding a readme: openpyxl's own error for it is not a SheetError."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return buffer.getvalue()


ZIP_NOT_A_WORKBOOK = zip_not_a_workbook()

PHOTO = str(ROOT / "docs" / "example-product.png")
KOREAN_SHEET = [["이름", "카테고리", "광고 문구", "보조 문구", "사진"],
                ["제주 감귤 탄산수", "음료", "여름 한정", "시원한 한 모금\r\n제주의 맛", "bottle.png"],
                ["유기농 녹차", "음료", "하루를 여는 녹차", "", ""]]
EXPECTED = [(2, {"name": "제주 감귤 탄산수", "category": "음료", "copy": "여름 한정",
                 "subcopy": "시원한 한 모금\n제주의 맛", "image": "bottle.png"}),
            (3, {"name": "유기농 녹차", "category": "음료", "copy": "하루를 여는 녹차", "subcopy": "", "image": ""})]


def rows(path, sheet=None):
    return read_sheet(path, CSV_COLUMNS, COLUMN_ALIASES, ("name",), sheet)


def csv_text(table, delimiter=",") -> str:
    quote = lambda c: f'"{c}"' if any(ch in c for ch in f'{delimiter}"\r\n') else c  # noqa: E731
    return "".join(delimiter.join(quote(c) for c in row) + "\r\n" for row in table)


@pytest.mark.parametrize(("name", "data"), [
    ("cp949.csv", csv_text(KOREAN_SHEET).encode("cp949")),  # Korean Excel's default "CSV (쉼표로 분리)"
    ("utf8.csv", csv_text(KOREAN_SHEET).encode()),
    ("bom.csv", codecs.BOM_UTF8 + csv_text(KOREAN_SHEET).encode()),  # "CSV UTF-8"
    ("unicode.txt", codecs.BOM_UTF16_LE + csv_text(KOREAN_SHEET, "\t").encode("utf-16-le")),  # "Unicode text"
    ("semicolon.csv", csv_text(KOREAN_SHEET, ";").encode()),  # a European-locale Excel
    ("trailing.csv", csv_text([r + ["", ""] for r in KOREAN_SHEET]).encode("cp949")),  # empty columns at the end
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_sheet_reads_as_saved(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    assert rows(path) == EXPECTED


def test_xlsx_first_sheet_or_by_name_with_formulas_as_values(tmp_path):
    book = Workbook()
    first = book.active
    first.title = "요약"
    first.append(["Name", "Copy"])
    first.append(["Summary row", "x"])
    second = book.create_sheet("제품")
    for row in KOREAN_SHEET:
        second.append([c.replace("\r\n", "\n") for c in row])
    second.append([None] * 5)  # a blank row is skipped
    second.append(["=\"합계\"", 3.0])  # a formula openpyxl wrote has no saved value: the cell reads as empty
    path = tmp_path / "products.xlsx"
    book.save(path)
    assert rows(path) == [(2, {"name": "Summary row", "copy": "x"})]
    assert rows(path, "제품")[:2] == EXPECTED and rows(path, "제품")[2] == (5, {
        "name": "", "category": "3", "copy": "", "subcopy": "", "image": ""})
    with pytest.raises(SheetError, match="no sheet '없음'; sheets are 요약, 제품"):
        rows(path, "없음")
    (tmp_path / "p.csv").write_text("name\nA\n")
    with pytest.raises(SheetError, match="--sheet applies to an .xlsx file"):
        rows(tmp_path / "p.csv", "제품")


@pytest.mark.parametrize(("name", "data", "says"), [
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "an old binary Excel .xls file can't be read; "
                                                                   "save it as .xlsx or CSV"),
    ("renamed.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "an old binary Excel .xls file"),
    ("sheet.numbers", b"PK\x03\x04 numbers", "a Numbers file can't be read; export it as .xlsx or CSV"),
    ("latin.csv", "name\nCafé Crème ÿ\n".encode("latin-1") + b"\x80\xff", "not UTF-8, UTF-16 or CP949"),
    ("trailing-name.csv", b"name,,copy\nA,,b\n", "column '(empty)' is not known"),
    ("twice.csv", "이름,name\nA,B\n".encode(), "two columns mean 'name'; keep one"),
    ("photos.zip", ZIP_NOT_A_WORKBOOK, "not a readable .xlsx file"),
], ids=lambda v: v if isinstance(v, str) and v.count(".") == 1 and len(v) < 20 else "")
def test_files_that_cannot_be_read_are_refused_in_one_line(tmp_path, name, data, says):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SheetError) as err:
        rows(path)
    assert str(err.value).startswith(f"{path}: ") and says in str(err.value) and "\n" not in str(err.value)


def test_the_korean_example_sheets_run(tmp_path, capsys):
    """docs/examples: the CSV exactly as Korean Excel saves it (CP949, CR+LF) and the .xlsx give the same rows, and
    a batch runs them (a cheap channel; the README's command uses the Korean platforms)."""
    examples = ROOT / "docs" / "examples"
    csv_path, xlsx_path = examples / "products-ko.csv", examples / "products-ko.xlsx"
    with pytest.raises(UnicodeDecodeError):
        csv_path.read_bytes().decode("utf-8")
    from_csv = rows(csv_path)
    assert from_csv == rows(xlsx_path) and from_csv[0][1]["name"] == "제주 감귤 탄산수"
    code = main(["batch", str(xlsx_path), "--channels", "display_320x50", "--background", "packshot",
                 "--out", str(tmp_path / "out"), "--quiet"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["row"] for r in report["rows"]] == [2, 3] and report["failed"] == []


@pytest.mark.parametrize(("env", "lang"), [
    ({"LANG": "ko_KR.UTF-8"}, "ko"), ({"LC_ALL": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}, "ko"),
    ({"LC_ALL": "C", "LANG": "ko_KR.UTF-8"}, "en"), ({"ADGEN_LANG": "ko", "LANG": "en_US.UTF-8"}, "ko"),
    ({"LC_MESSAGES": "ko_KR", "LANG": "C"}, "ko"), ({}, "en"),
])
def test_the_cli_language_follows_the_locale(env, lang):
    assert cli_lang(env) == lang


def test_the_cli_speaks_korean_on_a_korean_machine(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    for var in ("LC_ALL", "LC_MESSAGES", "ADGEN_LANG"):
        monkeypatch.delenv(var, raising=False)
    sheet = tmp_path / "p.csv"
    sheet.write_bytes(csv_text([["이름", "사진"], ["A", "missing.png"], ["B", PHOTO]]).encode("cp949"))
    code = main(["batch", str(sheet), "--channels", "display_320x50", "--background", "packshot",
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert f'오류: 2행, "image" 열: 파일을 찾을 수 없습니다: {tmp_path / "missing.png"}' in err
    assert "오류: 2행 중 1행 실패: 2행" in err
    assert main(["campaign", "--product", "x", "--channels", "tiktok", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("오류: --channels: 알 수 없는 값입니다: 'tiktok'. 다음 중에서 고르세요: ")
    with pytest.raises(SystemExit):
        main(["campaign", "--channels", "coupang_main"])
    assert capsys.readouterr().err.startswith("오류: 다음 인자가 필요합니다: --product, --out (--help 참고)")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    assert main(["batch", str(tmp_path / "old.xls"), "--channels", "coupang_main", "--out", str(tmp_path / "o")]) == 2
    assert "예전 엑셀 .xls 파일은 읽을 수 없습니다" in capsys.readouterr().err
    line = translate("coupang_main-v1.png: even at JPEG quality 40 the file is 612,345 bytes, over the limit of "
                     "500,000", "ko")
    assert line == "coupang_main-v1.png: JPEG 품질 40에서도 파일이 612,345바이트로 한도 500,000를 넘습니다"
