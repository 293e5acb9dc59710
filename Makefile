# Two commands: `make bench` (main job on the shipped defaults) and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lint test test-slow bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Lint (ruff, config in pyproject.toml) before the tests: a lint error fails `make test`.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two pytest workers (pytest-xdist), one per core, each test on one torch thread; worksteal keeps both busy
# to the end (the notebooks and the bench tests are the long ones).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist worksteal

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The default suite (experiments/lineage.toml): 72 runs, ~6-12 min with 2 workers here. Records and report go to
# runs/results/lineage/ (not tracked): the checkout stays clean. The committed results/lineage/ changes only when
# asked: .venv/bin/rl-distill bench lineage --workers 2 --resume --out results/lineage
bench: $(STAMP)
	$(BIN)/rl-distill bench lineage --workers 2 --resume

clean:
	rm -rf $(VENV) runs
