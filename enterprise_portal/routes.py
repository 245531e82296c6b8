"""The enterprise portal's one router: its record, import and recall APIs and its pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from enterprise_portal import (
    api,
    case_pages,
    cases_api,
    export_pages,
    import_pages,
    imports_api,
    label_pages,
    master_pages,
    pages,
)

TEMPLATES = Path(__file__).parent / "templates"

router = APIRouter()
# The APIs first, then the pages (the order in which the app matches them).
router.include_router(api.router)
router.include_router(imports_api.router)
router.include_router(cases_api.router)
router.include_router(pages.router)
router.include_router(import_pages.router)
router.include_router(label_pages.router)
router.include_router(case_pages.router)
router.include_router(master_pages.router)
router.include_router(export_pages.router)
