"""Write README's table of every TRACE_* setting from the Settings model itself.

    .venv/bin/python scripts/settings_table.py          # rewrite the table in README.md
    .venv/bin/python scripts/settings_table.py --check  # exit 1 when README disagrees

The table sits between ``<!-- settings-table -->`` and ``<!-- /settings-table -->``;
tests/test_deploy.py fails when it is not what this script writes, so a new,
renamed or re-described field cannot go undocumented.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- settings-table -->", "<!-- /settings-table -->"


def table() -> str:
    """The markdown table: variable, default, meaning (the field's description)."""
    from foodtrace.config import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise SystemExit(f"Settings.{name} has no description: give it one")
        default = field.get_default(call_default_factory=True)
        shown = f"`{default}`" if default not in (None, "") else "(none)"
        # "<file>" would render as an HTML tag
        meaning = " ".join(field.description.split()).replace("|", "\\|").replace("<", "&lt;")
        lines.append(f"| `{(prefix + name).upper()}` | {shown} | {meaning} |")
    return "\n".join(lines)


def rewritten(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    new = rewritten(text)
    if "--check" in argv:
        if new != text:
            print("README.md's settings table disagrees with foodtrace.config.Settings: "
                  "run scripts/settings_table.py")  # fmt: skip
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
