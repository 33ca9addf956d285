"""Runtime flags and module boundaries: Ray only when asked for, the cache without the model module, no bench circle."""

from __future__ import annotations

import argparse
import ast

import adgen.settings
from adgen.settings import worker_flags

from conftest import ROOT


def test_ray_address_alone_never_turns_workers_on_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv("ADGEN_WORKERS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # exported for another Ray program
    adgen.settings._ray_address_unused.cache_clear()
    assert worker_flags(argparse.Namespace(workers=None, ray_address=None)) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RAY_ADDRESS is set but not used" in err
    assert worker_flags(argparse.Namespace(workers=None, ray_address=None)) is None  # read again: said once
    assert capsys.readouterr().err == ""
    assert worker_flags(argparse.Namespace(workers="2", ray_address=None)) == (2, "10.0.0.1:6379")
    monkeypatch.setenv("ADGEN_WORKERS", "3")
    assert worker_flags(argparse.Namespace(workers=None, ray_address=None)) == (3, "10.0.0.1:6379")
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.delenv("ADGEN_WORKERS")
    assert worker_flags(argparse.Namespace(workers=None, ray_address=None)) is None
    assert capsys.readouterr().err == ""


def imported(path) -> set[str]:
    """Every module `path` imports (relative ones with their dots), at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_the_cache_does_not_depend_on_the_model_module_and_the_bench_has_no_import_circle():
    assert ".models" not in imported(ROOT / "adgen" / "cache.py")
    main = imported(ROOT / "bench" / "__main__.py")
    for name in ("workers", "writer", "cutout", "gpu", "quant", "timing"):
        path = ROOT / "bench" / f"{name}.py"
        if path.exists() and f"bench.{name}" in main:
            assert "bench.__main__" not in imported(path), name
