# illhub: every target creates .venv with the machine's python3 and installs the
# project into it when needed. ARGS passes options on: make run ARGS="--force".
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

ARGS ?=

.PHONY: install test demo run nightly check lint docs bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,distributed]'
	@touch $(STAMP)

## make install: create .venv and install illhub into it; then '. .venv/bin/activate' puts illhub on PATH
install: $(STAMP)
	@echo "illhub is installed in $(VENV)/. Type '. $(VENV)/bin/activate' (each new shell) to use the illhub command."

## make test: install, then run the whole (offline) test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## make demo: harvest the bundled demo web into data/demo.db and browse it at http://127.0.0.1:8001/
demo: $(STAMP)
	$(BIN)/illhub demo $(ARGS)

## make run: harvest the real registry.yaml into data/illhub.db (failures are reported per source), then serve;
## ARGS go to the harvest (make run ARGS="--force"), SERVE_ARGS to serve (SERVE_ARGS="--port 8002")
SERVE_ARGS ?=
run: $(STAMP)
	-$(BIN)/illhub harvest $(ARGS)
	$(BIN)/illhub serve $(SERVE_ARGS)

## make nightly: harvest every night and serve the catalog with systemd (illhub install-systemd $(ARGS))
nightly: $(STAMP)
	$(BIN)/illhub install-systemd $(ARGS)

## make check: lint, then the tests
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

## make docs: regenerate the generated sections of docs/*.md (CLI help, registry fields, schema, ...), then check the links
docs: $(STAMP)
	$(BIN)/python -m tools.docs
	$(BIN)/python -m tools.links

## make bench: ratio benchmarks (see benchmarks/)
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
