# Every target creates the virtual environment it needs; a fresh machine needs only Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PEER_VENV := .venv-peer
PG_SERVER_CONN ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install browser notebook demo test test-pg test-server test-spark test-cov lint typecheck check format bench docker-up docker-down clean

# compileall: bytecode for the editable package, as pip writes it for every wheel it installs. Where
# PYTHONDONTWRITEBYTECODE is set (this machine, many CI images) Python would otherwise compile milvusdiff's modules
# again in every process: about 50 ms of a 0.5 s `milvusdiff compare` of small files. An edited module is recompiled.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(BIN)/python -m compileall -q milvusdiff
	touch $(STAMP)

install: $(STAMP)

# JupyterLab (the [notebook] extra) on notebooks/analyze_diff.ipynb, opened on the newest run; prints the URL.
NOTEBOOK_ARGS ?=
$(VENV)/.notebook: $(STAMP)
	$(BIN)/pip install --quiet -e '.[notebook]'
	touch $@

notebook: $(VENV)/.notebook
	$(BIN)/python scripts/notebook.py $(NOTEBOOK_ARGS)

# tests/test_report_browser.py renders report.html in headless Chromium; Debian's package, when missing.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# The demo corrupts rows on purpose, so milvusdiff exits 1 (differences found): that is success here.
demo: $(STAMP)
	$(BIN)/milvusdiff demo || test $$? -eq 1

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-pg: $(STAMP)
	PG_CONN=$(PG_SERVER_CONN) $(BIN)/python -m pytest -q -p no:cacheprovider

# The Spark engine's lane: installs the spark extra into the venv, and Java when missing (Debian's JRE 17).
test-spark: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
		|| echo "could not install Java: the Spark tests will skip, saying so"
	PYSPARK_PYTHON=$(abspath $(BIN)/python) $(BIN)/python -m pytest -q -p no:cacheprovider -m spark

test-server: $(STAMP)
	$(BIN)/python scripts/server_lane.py

lint: $(STAMP)
	$(BIN)/ruff check milvusdiff tests bench scripts
	$(BIN)/ruff format --check milvusdiff tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# What CI gates on, in one command: lint, types, then the suite.
check: lint typecheck test

format: $(STAMP)
	$(BIN)/ruff check --fix milvusdiff tests bench scripts
	$(BIN)/ruff format milvusdiff tests bench scripts

# Per-module coverage (CLI subprocesses included); modules under 80% are named at the end. No threshold fails it.
test-cov: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --cov=milvusdiff --cov-report=term --cov-report=json:.coverage.json
	$(BIN)/python scripts/coverage_gaps.py .coverage.json

$(PEER_VENV)/.installed:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install --quiet 'datacompy==1.1.0' 'pyarrow>=26'
	touch $@

bench: $(STAMP) $(PEER_VENV)/.installed
	$(BIN)/python bench/run_all.py

docker-up:
	docker compose up -d

docker-down:
	docker compose down

clean:
	rm -rf $(VENV) $(PEER_VENV) .milvusdiff build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*
