.PHONY: run test lint demo verify
run:    ## install and serve on SQLite with the demo district
	scripts/run
test:   ## install and run the tests (SQLite and PostgreSQL)
	scripts/test
lint:   ## ruff, and mypy with the settings in pyproject.toml (tests/test_typing.py too)
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
demo:
	.venv/bin/foodtrace demo
verify:
	.venv/bin/foodtrace verify
