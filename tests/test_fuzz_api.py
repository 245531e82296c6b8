"""Every API operation, fuzzed from the app's own OpenAPI schema (Schemathesis), as each user.

For each operation and each kind of caller (anonymous, an enterprise user, an
enterprise admin, a regulator, the platform admin) Hypothesis generates
requests from the schema with a fixed seed and a bounded number of examples.
No answer may be a server error, and every answer the schema documents must
match its documented shape. ``FOODTRACE_LONG=1`` raises the number of examples.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from conftest import ACCESS_PASSWORD, LONG

EXAMPLES = 40 if LONG else 3
CALLERS = ("anon", "ent_a", "ent_a_admin", "reg_in", "admin")


def test_no_operation_answers_with_a_server_error_or_off_its_schema(app, client, world) -> None:
    headers: dict[str, dict[str, str]] = {"anon": {}}
    for user in CALLERS[1:]:
        r = client.post("/api/v1/auth/token", data={"username": user, "password": ACCESS_PASSWORD})
        headers[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    failures: list[str] = []
    statuses: Counter[int] = Counter()

    for op in operations:
        if op.path == "/api/v1/auth/token":
            continue  # wrong passwords would throttle every later sign-in; tested elsewhere
        for user in CALLERS:
            _runner(op, user, headers[user], failures, statuses)()
    calls = sum(statuses.values())
    assert calls >= len(operations) * len(CALLERS)  # each was called at least once
    print(f"{calls} calls of {len(operations)} operations as {len(CALLERS)} callers:", statuses)
    assert not failures, "\n\n".join(failures[:20])


def _runner(
    op: Any, user: str, headers: dict[str, str], failures: list[str], statuses: Counter[int]
) -> Any:
    @given(case=op.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        except Exception as exc:  # noqa: BLE001 - collected, reported together
            failures.append(f"{op.method.upper()} {op.path} as {user}: {exc}"[:600])

    return run
