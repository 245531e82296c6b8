.PHONY: run test lint demo verify
run:    ## install and serve on SQLite with the demo district
	scripts/run
test:   ## install and run the tests (SQLite and PostgreSQL)
	scripts/test
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
demo:
	.venv/bin/foodtrace demo
verify:
	.venv/bin/foodtrace verify
