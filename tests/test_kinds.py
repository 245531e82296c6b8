"""The record-kind registry (issue 16): every kind is complete in every layer, and a new
kind is one module (plus its table's migration, its translations and, only when the
generic one does not serve, a form).

``incomplete()`` lists what a registry lacks; it must find nothing in the real one, and
it finds each deliberate gap of a broken one. ``test_a_new_kind_is_one_module`` adds a
throwaway kind (tests/kind_plugin/hygiene_check.py) to the registry in a fresh process
and uses it through recording, verification, tampering, import, the API and the page.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from pydantic import BaseModel

from enterprise_portal.forms import FORMS, KindForm, forms_for
from foodtrace.records.kinds import BY_KIND, REGISTRY, KindSpec, Owner
from foodtrace.records.projection import TABLES
from schemas.api import LotPublic
from schemas.records import RecordKind
from web.i18n import translations
from web.timeline import ROWS as TIMELINE_ROWS

ROOT = Path(__file__).resolve().parents[1]
ZH = translations("zh_Hans")


def incomplete(kinds: Iterable[KindSpec], forms: dict[str, KindForm]) -> list[str]:
    """Every way in which a kind of ``kinds`` is not complete in every layer."""
    out: list[str] = []
    kinds = list(kinds)
    seen: dict[str, str] = {}
    for k in kinds:
        for key, what in ((k.kind, "kind"), (k.api_path, "API path")):
            if key is None:
                continue
            if (what, key) in seen:
                out.append(f"{k.kind}: {what} {key!r} used twice (also {seen[what, key]})")
            seen[what, key] = k.kind  # type: ignore[index]
        for t in k.tables:
            if ("table", t.name) in seen:
                out.append(f"{k.kind}: table {t.name} is also {seen['table', t.name]}'s")
            seen["table", t.name] = k.kind  # type: ignore[index]
            missing = {"record_seq", "current_seq"} - set(t.c.keys())
            owner = "ledger_id" if k.owner is Owner.AUTHORITY else "enterprise_id"
            if k.kind != RecordKind.ENTERPRISE and owner not in t.c:
                missing.add(owner)
            if missing:
                out.append(f"{k.kind}: table {t.name} lacks {sorted(missing)}")
        if not (isinstance(k.schema, type) and issubclass(k.schema, BaseModel)):
            out.append(f"{k.kind}: no schema")
            continue
        fields = k.schema.model_fields
        if k.project is None and k.kind != RecordKind.CORRECTION:
            out.append(f"{k.kind}: no projector")
        if not k.tables:
            out.append(f"{k.kind}: no derived table")
        if k.natural_time and k.natural_time not in fields:
            out.append(f"{k.kind}: natural time {k.natural_time!r} is not a field")
        if k.snapshot and k.snapshot.code_field not in fields:
            out.append(f"{k.kind}: snapshot field {k.snapshot.code_field!r} is not a field")
        for text, what in ((k.label, "label"), (k.summary, "summary")):
            if what == "summary" and not k.form:
                continue
            if not text:
                out.append(f"{k.kind}: no {what}")
            elif ZH.gettext(text) == text:
                out.append(f"{k.kind}: no Chinese for its {what} {text!r}")
        if k.form and k.kind not in forms:
            out.append(f"{k.kind}: no form")
        if k.imports is not None:
            if k.api_path is None:
                out.append(f"{k.kind}: importable, but no API path to name its import")
            keys = {c.key.split(".")[0] for c in k.imports.columns}
            for name, info in fields.items():
                if info.is_required() and name not in keys:
                    out.append(f"{k.kind}: its spreadsheet has no column for {name!r}")
            for c in k.imports.columns:
                if c.key.split(".")[0] not in fields:
                    out.append(f"{k.kind}: column {c.key!r} is not a field")
        if k.lot_view is not None:
            if k.lot_view not in LotPublic.model_fields:
                out.append(f"{k.kind}: lot view {k.lot_view!r} is not a field of LotPublic")
            if k.kind not in TIMELINE_ROWS:
                out.append(f"{k.kind}: rows in a lot's view, but no row on its timeline")
        if k.owner is Owner.ENTERPRISE and not k.system and k.api_path is None and k.form:
            out.append(f"{k.kind}: a page form but no API path")
    return out


def test_every_registered_kind_is_complete_in_every_layer() -> None:
    assert incomplete(REGISTRY, FORMS) == []
    # every kind the code names is registered, and the projection holds every table
    assert {str(k) for k in RecordKind} <= set(BY_KIND)
    assert set(TABLES) == {t.name for k in REGISTRY for t in k.tables}


def test_each_kind_of_gap_is_found() -> None:
    sale = BY_KIND[RecordKind.SALE]
    broken = [
        dataclasses.replace(sale, kind="sale_twice"),  # its path used twice
        dataclasses.replace(BY_KIND[RecordKind.CUSTOMER], kind="untranslated", label="Gone"),
        dataclasses.replace(BY_KIND[RecordKind.SUPPLIER], kind="formless"),
        dataclasses.replace(
            sale,
            kind="columnless",
            api_path="/columnless",
            imports=dataclasses.replace(
                sale.imports, columns=[c for c in sale.imports.columns if c.key != "lot_code"]
            ),
        ),
    ]
    forms = {**FORMS, "sale_twice": FORMS["sale"], "untranslated": FORMS["customer"]}
    forms["columnless"] = FORMS["sale"]
    found = "\n".join(incomplete([sale, *broken], forms))
    assert "sale_twice: API path '/sales' used twice (also sale)" in found
    assert "table sales is also sale's" in found
    assert "untranslated: no Chinese for its label 'Gone'" in found
    assert "formless: no form" in found
    viewless = dataclasses.replace(sale, kind="viewless", api_path="/v", lot_view="nothing")
    assert incomplete([viewless], {"viewless": FORMS["sale"]}) == [
        "viewless: lot view 'nothing' is not a field of LotPublic",
        "viewless: rows in a lot's view, but no row on its timeline",
    ]
    assert "columnless: its spreadsheet has no column for 'lot_code'" in found


def test_kinds_without_a_form_of_their_own_get_the_generic_one() -> None:
    from kind_plugin import hygiene_check

    forms = forms_for([*REGISTRY, hygiene_check.SPEC])
    assert list(forms)[: len(FORMS)] == list(FORMS)
    # the registry's real kinds all have forms of their own (the generic one is for new ones)
    assert all(f.build.__name__ != "build" for f in FORMS.values())
    found = incomplete([*REGISTRY, hygiene_check.SPEC], forms)
    # complete but for its translations, which the new kind's change adds to the catalogue
    assert found == [
        "hygiene_check: no Chinese for its label 'Hygiene check'",
        'hygiene_check: no Chinese for its summary "A production area\'s daily hygiene."',
    ]


def test_a_new_kind_is_one_module(db_url: str, engine) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "kind_plugin" / "run.py"), db_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "recorded": "hygiene_check",
        "rows": [["灌装车间", "2026-03-02", True]],
        "verified": True,
        "import_errors": [],
        "imported": 1,
        "api": 201,
        "openapi": True,
        "form": 200,
        "form_fields": ["area", "check_date", "result", "inspector"],
        "index": True,
        "verified_after": True,
        "tamper_found": True,
    }


@pytest.mark.parametrize("kind", sorted(FORMS))
def test_every_form_renders_its_kind(kind: str) -> None:
    assert FORMS[kind].kind == kind
    assert BY_KIND[kind].form
