"""The import rules of STYLE.md: schemas ← core ← web ← portals ← webapp, the core's own
layers (canonical ← tlog ← ledger ← records), and no module shadows the stdlib."""

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


CORE = ROOT / "trace" / "foodtrace"
LAYERS: list[frozenset[str]] = [
    # The core's layers, lowest first: a module may import the modules of its own layer and
    # of the layers before it, never one after it. Every module of foodtrace is in one.
    frozenset({"canonical"}),  # entry bytes and leaf hashes: nothing of ours at all
    frozenset({"errors"}),
    frozenset({"tlog"}),  # pure crypto and formats: no database, no ledger
    frozenset({"clock", "config", "db", "bulk", "digital_link", "sheets", "logs", "qr"}),
    frozenset({"accounts", "attachments"}),
    frozenset({"ledger"}),  # entries, heads and checkpoints as stored; no record kinds
    frozenset(
        {
            "records",
            "cases",
            "trail",
            "completeness",
            "completeness_queries",
            "epcis",
            "imports",
            "consumer",
            "verify",
        }
    ),
    frozenset({"demo", "cli", "models", "migrations", "__init__", "__main__"}),
]
PURE = {"canonical": set(), "errors": set(), "tlog": {"canonical", "errors", "tlog"}}
"""Modules that import nothing of ours but these (not even schemas), and no database."""
DATABASE = ("sqlalchemy", "sqlmodel", "alembic", "psycopg")


def module_imports(path: Path) -> set[str]:
    """Every module a file imports, by its full dotted name (``from a import b``: a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import hides from this test"
            assert node.module
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _layer(name: str) -> int:
    found = [i for i, layer in enumerate(LAYERS) if name in layer]
    assert found, f"foodtrace.{name} is in no layer of LAYERS: place it"
    return found[0]


def test_every_core_module_is_in_one_layer() -> None:
    names = {p.stem for p in CORE.glob("*.py")} | {p.parent.name for p in CORE.glob("*/*.py")}
    placed = [n for layer in LAYERS for n in layer]
    assert len(placed) == len(set(placed)), "a module in two layers"
    assert names == set(placed), (names - set(placed), set(placed) - names)


def test_the_core_layers_import_only_downwards() -> None:
    """canonical ← errors ← tlog ← … ← ledger ← records …: never an arrow upwards."""
    checked = 0
    for path in CORE.rglob("*.py"):
        own = path.relative_to(CORE).parts[0].removesuffix(".py")
        for name in module_imports(path):
            parts = name.split(".")
            if parts[0] != "foodtrace" or len(parts) == 1:
                continue
            if (CORE / parts[1]).is_dir() or (CORE / f"{parts[1]}.py").is_file():
                assert _layer(parts[1]) <= _layer(own), f"{path.relative_to(ROOT)} imports {name}"
                checked += 1
    assert checked > 100


@pytest.mark.parametrize("package", sorted(PURE))
def test_the_pure_layers_import_no_database_and_nothing_of_ours_above(package: str) -> None:
    """tlog is crypto and formats: neither SQLAlchemy nor SQLModel, nor the ledger, records,
    schemas; canonical and errors import nothing of ours at all."""
    single = CORE / f"{package}.py"
    paths = [single] if single.exists() else sorted((CORE / package).rglob("*.py"))
    allowed = PURE[package]
    for path in paths:
        for name in module_imports(path):
            top = name.split(".")[0]
            assert top not in DATABASE, f"{path.relative_to(ROOT)} imports {name}"
            assert top not in OURS or (
                top == "foodtrace" and len(name.split(".")) > 1 and name.split(".")[1] in allowed
            ), f"{path.relative_to(ROOT)} imports {name}"


def test_importing_tlog_loads_no_database_layer() -> None:
    code = (
        "import sys, foodtrace.tlog.bundle, foodtrace.tlog.witness, foodtrace.tlog.signer;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel')"
        " or m.startswith(('foodtrace.ledger', 'foodtrace.records', 'schemas'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


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


def test_every_error_of_tlog_is_a_proof_error() -> None:
    """One error root: ``except ProofError`` catches whatever the log raises on purpose."""
    import importlib
    import inspect

    from foodtrace.tlog.errors import ProofError

    found = []
    for path in sorted((CORE / "tlog").glob("*.py")):
        module = importlib.import_module(f"foodtrace.tlog.{path.stem}")
        for _name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
                assert issubclass(obj, ProofError), obj
    assert len(found) >= 10
    assert issubclass(ProofError, ValueError)


def test_every_session_the_app_opens_is_a_foodtrace_session() -> None:
    """The ledger's and the projection's listeners live on foodtrace.db.FoodtraceSession: a
    session opened as a plain ``Session(...)`` (or from a ``sessionmaker``) would lack them."""
    plain = {"Session", "sessionmaker", "scoped_session"}
    for package in ("trace", "webapp", "enterprise_portal", "regulator_view"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                    assert name not in plain, f"{path.relative_to(ROOT)}:{node.lineno} {name}()"
