"""A correction of an earlier entry; the original stays."""

from __future__ import annotations

from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.models import Correction
from schemas.records import CorrectionCreate, RecordKind

SPEC = KindSpec(
    kind=RecordKind.CORRECTION,
    schema=CorrectionCreate,
    owner=Owner.ENTERPRISE,
    tables=(Correction.__table__,),
    project=None,  # applies its target's projector (records.projection.apply_entry)
    label=N_("Correction"),
    api_path="/corrections",
    api_summary="Correct an earlier entry (the original stays)",
    declares=True,
    form=False,  # a correction is entered on the form of the record it corrects
)
