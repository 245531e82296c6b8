"""Long lists on pages: the first part, and a link that shows more (issue 22, item 10).

A lot with 22k sales made the trail page 7.3 MB and Today 2.9 MB. A page now shows the
first ``FIRST`` items of such a list; its "more" link doubles that, up to ``MOST``. The
complete lists are the exports (streamed) and the API (paged by cursor).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

FIRST = 200
"""Items a list shows at first."""
MOST = 5000
"""The most a "more" link shows: past that, the export or the API."""


@dataclass(frozen=True)
class Part:
    """The shown part of a list: its items, how many there are, and the link to more."""

    items: Sequence[Any]
    total: int
    more_url: str | None

    @property
    def shown(self) -> int:
        return len(self.items)


def wanted(request: Request, name: str) -> int:
    """How many items of the list ``name`` the page asks for (``FIRST`` .. ``MOST``)."""
    asked = request.query_params.get(name, "")
    return min(MOST, max(FIRST, int(asked))) if asked.isdigit() and len(asked) < 7 else FIRST


def first_part(request: Request, items: Sequence[Any], name: str, total: int | None = None) -> Part:
    """The first part of ``items``; the query parameter ``name`` asks for more of them.

    ``total``: the length of the whole list, when ``items`` is only its first
    :func:`wanted` items (read with a limit)."""
    want = wanted(request, name)
    total = len(items) if total is None else total
    more = None
    if want < total and want < MOST:
        query = {**request.query_params, name: str(min(MOST, want * 2))}
        more = f"{request.url.path}?{urlencode(query)}#{name}"
    return Part(items[:want], total, more)
