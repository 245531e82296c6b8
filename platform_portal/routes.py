"""The platform portal's one router: sign-in (token API and pages), the platform admin's
API and pages, the ledger proofs and the public consumer page of a lot."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from platform_portal import auth, consumer, ledgers, pages, platform_admin, platform_pages

TEMPLATES = Path(__file__).parent / "templates"

router = APIRouter()
# The APIs first, then the pages (the order in which the app matches them).
router.include_router(auth.router)
router.include_router(platform_admin.router)
router.include_router(consumer.router)
router.include_router(ledgers.router)
router.include_router(pages.router)
router.include_router(platform_pages.router)
