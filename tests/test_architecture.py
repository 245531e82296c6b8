"""The import rule of STYLE.md: schemas ← core ← portals, and no module shadows the stdlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ("fastapi", "starlette", "jinja2", "uvicorn")
OURS = ("foodtrace", "schemas", "enterprise_portal", "regulator_view", "webapp")


def imports(package_dir: Path) -> dict[str, set[str]]:
    """Every top-level module name imported by each file of a package."""
    out: dict[str, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


def test_core_imports_no_web_framework_and_no_portal() -> None:
    found = imports(ROOT / "trace" / "foodtrace")
    assert len(found) > 10
    for path, names in found.items():
        assert not names & set(WEB), (path, names & set(WEB))
        assert not names & {"enterprise_portal", "regulator_view", "webapp"}, path


def test_schemas_import_nothing_of_ours_but_schemas() -> None:
    for path, names in imports(ROOT / "schemas").items():
        assert not names & (set(OURS) - {"schemas"}), path
        assert not names & set(WEB), path


def test_portals_never_import_each_other() -> None:
    for path, names in imports(ROOT / "enterprise_portal").items():
        assert "regulator_view" not in names, path
    for path, names in imports(ROOT / "regulator_view").items():
        assert "enterprise_portal" not in names, path


def test_importing_the_core_loads_no_web_framework() -> None:
    code = (
        "import sys, foodtrace.records.service, foodtrace.verify, foodtrace.cli;"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {WEB!r}];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_trace_still_means_the_standard_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import trace; print(trace.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert result.returncode == 0
    assert "site-packages" not in result.stdout
    assert "/trace/foodtrace" not in result.stdout


def test_ruff_passes_with_the_stdlib_shadowing_rule() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.fail("ruff is part of the test extras: pip install -e '.[test]'")
    result = subprocess.run(
        [str(ruff), "check", "--select", "A005,E,F,W,I,B,UP", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
