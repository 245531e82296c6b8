"""The regulator's portal's one router: its tracing, completeness and case APIs and pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from regulator_view import api, case_pages, cases_api, pages

TEMPLATES = Path(__file__).parent / "templates"

router = APIRouter()
# The APIs first, then the pages (the order in which the app matches them).
router.include_router(api.router)
router.include_router(api.lots_router)
router.include_router(cases_api.router)
router.include_router(pages.router)
router.include_router(case_pages.router)
