"""The import rule of STYLE.md: schemas ← core ← web ← portals ← webapp, and no module
shadows the stdlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ("fastapi", "starlette", "jinja2", "uvicorn")
PORTALS = ("enterprise_portal", "regulator_view", "platform_portal")
OURS = ("foodtrace", "schemas", "web", *PORTALS, "webapp")
STARTERS = ("tests", "scripts", "bench", "webapp")
"""The folders that may import the composition root: it, and what starts the app."""


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
        assert not names & {"web", *PORTALS, "webapp"}, path


def test_schemas_import_nothing_of_ours_but_schemas() -> None:
    for path, names in imports(ROOT / "schemas").items():
        assert not names & (set(OURS) - {"schemas"}), path
        assert not names & set(WEB), path


def test_the_web_library_knows_no_portal_and_not_the_composition_root() -> None:
    found = imports(ROOT / "web")
    assert len(found) > 10
    for path, names in found.items():
        assert not names & {*PORTALS, "webapp"}, (path, names & {*PORTALS, "webapp"})
        # nor by path (a template or static folder of a portal named in the library)
        text = (ROOT / path).read_text(encoding="utf-8")
        assert not [p for p in (*PORTALS, "webapp") if p in text], path


def test_portals_never_import_each_other_nor_the_composition_root() -> None:
    for portal in PORTALS:
        found = imports(ROOT / portal)
        assert found, portal
        for path, names in found.items():
            assert not names & ({*PORTALS, "webapp"} - {portal}), (path, names)


def test_only_what_starts_the_app_imports_the_composition_root() -> None:
    """``webapp`` is imported by itself, the tests, the scripts and the benchmarks only (the
    CLI's ``serve`` is an entry point named in pyproject.toml, a string)."""
    seen = 0
    for top in sorted(ROOT.iterdir()):
        if not top.is_dir() or top.name.startswith(".") or top.name in STARTERS:
            continue
        for path, names in imports(top).items():
            seen += 1
            assert "webapp" not in names, path
    assert seen > 100


def test_each_portal_assembles_one_router_and_the_root_includes_those() -> None:
    """The composition root names one router per portal, not the portals' modules."""
    main = imports(ROOT / "webapp")["webapp/main.py"]
    assert set(PORTALS) <= main
    tree = ast.parse((ROOT / "webapp" / "main.py").read_text(encoding="utf-8"))
    portal_imports = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PORTALS
        for alias in node.names
    }
    assert portal_imports == {(p, "routes") for p in PORTALS}, portal_imports


def test_importing_the_core_loads_no_web_framework() -> None:
    code = (
        "import sys, foodtrace.records.service, foodtrace.verify, foodtrace.cli;"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {WEB!r}];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_web_library_loads_no_portal() -> None:
    modules = sorted(f"web.{p.stem}" for p in (ROOT / "web").glob("*.py") if p.stem != "__init__")
    code = (
        f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}];"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {(*PORTALS, 'webapp')!r}];"
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
