"""mypy, with the project's settings (pyproject.toml, [tool.mypy]), finds no error.

Strict for the pure layers (tlog, canonical, errors), mypy's defaults elsewhere, with the
SQLModel and pydantic plugins. About half a minute of CPU from a cold cache.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]


def _overrides(flag: str) -> set[str]:
    return {
        module
        for override in CONFIG.get("overrides", [])
        if override.get(flag)
        for module in override["module"]
    }


def test_mypy_finds_no_error(tmp_path: Path) -> None:
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.fail("mypy is part of the test extras: pip install -e '.[test]'")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout


def test_the_pure_layers_are_strict_and_nothing_else_is_left_out() -> None:
    assert {"foodtrace.tlog.*", "foodtrace.canonical", "foodtrace.errors"} <= _overrides(
        "disallow_untyped_defs"
    )
    # every first-party package is checked (bench/ holds scripts) and no module is excused
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"bench"}  # scripts
    assert set(CONFIG["files"]) >= {"trace/foodtrace", "schemas"} | packages
    assert not _overrides("ignore_errors")
    assert not _overrides("ignore_missing_imports")
    assert "disable_error_code" not in CONFIG
