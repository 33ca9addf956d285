"""Reading a spreadsheet as people save it into rows: CSV in UTF-8 (with or without Excel's BOM), CP949 (what
Korean Excel writes by default) or UTF-16 (Excel's "Unicode text"), and .xlsx through openpyxl.

The encoding is never guessed silently: a BOM decides, else strict UTF-8, else strict CP949, else the file is
refused. The delimiter (comma, semicolon, tab) is sniffed from the header line. Header names are matched with
case, spaces and underscores ignored, through the caller's aliases (이름 -> name); empty trailing columns are
ignored; line breaks inside cells (CR+LF from Excel) become one "\\n". Rows are numbered as the spreadsheet
shows them (the header is row 1). Knows nothing of campaigns: the caller names the columns.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import AdgenError

DELIMITERS = (",", ";", "\t")
MAX_SHEET_BYTES = 50 * 1024 * 1024  # a CSV is read whole; an .xlsx is streamed (read-only) whatever its size
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the header of an old binary .xls (and other OLE files)
_ZIP = b"PK\x03\x04"
Row = tuple[int, dict[str, str]]


class SheetError(AdgenError):
    """The spreadsheet file itself can't be used (the message names the file and says what to do)."""


def read_sheet(path: Path | str, columns: Sequence[str], aliases: dict[str, str] | None = None,
               required: Sequence[str] = (), sheet: str | None = None) -> list[Row]:
    """The rows of a CSV or .xlsx file under its header: (row number as the spreadsheet shows it, {column: text}).

    `columns` are the canonical names, `aliases` other header names for them (any case, spaces ignored); a row
    with more cells than the header has columns gets an "_extra" entry; blank rows are skipped. `sheet` picks an
    .xlsx worksheet by name (default: the first).
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except OSError as exc:
        raise SheetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".xls" or head.startswith(_OLE):
        raise SheetError(f"{path}: an old binary Excel .xls file can't be read; save it as .xlsx or CSV "
                         "(File › Save As) and use that")
    if suffix == ".numbers":
        raise SheetError(f"{path}: a Numbers file can't be read; export it as .xlsx or CSV (File › Export To) "
                         "and use that")
    if suffix in (".xlsx", ".xlsm") or (head.startswith(_ZIP) and suffix not in (".csv", ".txt", ".tsv")):
        lines: Iterable[tuple[int, list]] = _xlsx_rows(path, sheet)
    else:
        if sheet is not None:
            raise SheetError(f"{path}: --sheet applies to an .xlsx file; a CSV has one sheet")
        lines = _csv_rows(path)
    return _rows(path, lines, columns, aliases or {}, required)


def header_key(name: str) -> str:
    """A header cell as it is matched: case, spaces and underscores ignored ("Ad Copy" == "ad_copy" == "adcopy")."""
    return "".join(str(name).split()).replace("_", "").casefold()


def decode(data: bytes, path: Path) -> str:
    """The text of a CSV: by BOM (UTF-8, UTF-16), else strict UTF-8, else strict CP949; else a SheetError."""
    if data.startswith(codecs.BOM_UTF8):
        return _strict(data[3:], "utf-8", path)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _strict(data, "utf-16", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp949")
    except UnicodeDecodeError:
        raise SheetError(f"{path}: not UTF-8, UTF-16 or CP949 (Korean Excel) text; save the sheet as "
                         "\"CSV UTF-8\" or .xlsx") from None


def _strict(data: bytes, encoding: str, path: Path) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SheetError(f"{path}: starts as {encoding.upper()} but byte {exc.start} is not; save the sheet again "
                         "as \"CSV UTF-8\" or .xlsx") from None


def _csv_rows(path: Path) -> Iterator[tuple[int, list]]:
    try:
        if path.stat().st_size > MAX_SHEET_BYTES:
            raise SheetError(f"{path}: larger than {MAX_SHEET_BYTES // 2**20} MB; save it as .xlsx (read row by row)")
        text = decode(path.read_bytes(), path)
    except OSError as exc:
        raise SheetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    first = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    inside = 0  # line breaks inside quoted cells so far: a spreadsheet shows such a cell in one row
    try:
        for cells in reader:  # line_num counts the lines read so far, this row's breaks inside cells too
            inside += sum(c.replace("\r\n", "\n").replace("\r", "\n").count("\n") for c in cells)
            yield reader.line_num - inside, cells
    except csv.Error as exc:
        raise SheetError(f"{path}: not a readable CSV: {exc}") from None


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list]]:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    unreadable = (OSError, zipfile.BadZipFile, KeyError, ValueError, InvalidFileException)
    try:  # read-only streams the rows (a 100,000-row sheet stays small); data_only gives formulas' saved values
        book = load_workbook(path, read_only=True, data_only=True)
    except unreadable as exc:
        raise SheetError(f"{path}: not a readable .xlsx file ({exc}); save it again from Excel as .xlsx") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise SheetError(f"{path}: no sheet {sheet!r}; sheets are {', '.join(book.sheetnames)}")
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        for number, cells in enumerate(worksheet.iter_rows(values_only=True), start=1):
            yield number, [_cell_text(v) for v in cells]
    except unreadable as exc:  # a damaged sheet fails while its rows stream
        raise SheetError(f"{path}: not a readable .xlsx file ({exc}); save it again from Excel as .xlsx") from None
    finally:
        book.close()


def _cell_text(value: object) -> str:
    """An .xlsx cell as the text a user sees: 3 not 3.0, a date as 2026-07-01, nothing as ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _rows(path: Path, lines: Iterable[tuple[int, list]], columns: Sequence[str], aliases: dict[str, str],
          required: Sequence[str]) -> list[Row]:
    known = {header_key(c): c for c in columns} | {header_key(a): c for a, c in aliases.items()}
    lines = iter(lines)
    first = next(lines, None)
    cells = [str(c).strip() for c in (first[1] if first else [])]
    while cells and not cells[-1]:  # empty trailing columns (a sheet whose used range runs past the header)
        cells.pop()
    if not cells:
        raise SheetError(f"{path}: empty; the first row must name the columns ({', '.join(columns)})")
    header = []
    for cell in cells:
        name = known.get(header_key(cell))
        if name is None:
            shown = cell if cell else "(empty)"
            raise SheetError(f"{path}: column {shown!r} is not known; columns are {', '.join(columns)}")
        if name in header:
            raise SheetError(f"{path}: two columns mean {name!r}; keep one")
        header.append(name)
    for name in required:
        if name not in header:
            raise SheetError(f"{path}: no \"{name}\" column; columns are {', '.join(columns)}")
    rows = []
    for number, raw in lines:
        raw = [_normal(c) for c in raw]
        values = dict(zip(header, raw[:len(header)] + [""] * (len(header) - len(raw)), strict=True))
        extra = [c for c in raw[len(header):] if c.strip()]
        if extra:  # more cells than columns (empty ones past the header are the trailing columns above)
            values["_extra"] = extra
        if any(v.strip() for v in values.values() if isinstance(v, str)) or extra:
            rows.append((number, values))
    if not rows:
        raise SheetError(f"{path}: no product rows under the header")
    return rows


def _normal(cell: object) -> str:
    """A cell's text with Excel's line breaks (CR+LF, a lone CR) as one "\\n"."""
    return str(cell if cell is not None else "").replace("\r\n", "\n").replace("\r", "\n")
