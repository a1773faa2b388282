# rental_kpis — every command a user runs. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAKE   ?= $(or $(RENTAL_KPIS_LAKE),lake)
RAW    ?= data/raw
REPORTS ?= reports
PYTEST_ARGS ?=
# The notebooks' Jupyter kernel: this virtualenv's Python, registered inside the venv.
KERNEL := rental-kpis
# What `make install` installs: every package, transitive ones too, with the hashes of all its
# files (Linux, macOS, Windows). `make lock` writes it from requirements.txt (the exact pins and
# why some are held back) and pyproject.toml (ranges, extras, dependency groups), resolved with
# uv for every platform and every Python from LOCK_PYTHON, the oldest that requires-python
# allows. uv is installed into .venv only for that; `make install` never needs it.
LOCK := requirements.lock
LOCK_PYTHON := 3.11
UV := uv==0.13.9
LOCK_ARGS ?=

.DEFAULT_GOAL := help
BENCH_SIZES ?= sample,100000,1000000,5000000,10000000
BENCH_REPEATS ?= 3

.PHONY: help install lock demo run report lab browser tracer screenshot test durations fuzz check lint format sample bench clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (rental_kpis)" >/dev/null
	$(BIN)/rental-kpis class-archive
	touch $(STAMP)

install: $(STAMP) ## create .venv and install requirements.lock (hash-checked) and the package

# Transitive packages keep their locked versions unless a pin needs otherwise; to move them to
# the newest that fit as well: make lock LOCK_ARGS=--upgrade. Then make check, and commit the
# lock with requirements.txt and pyproject.toml (tests/test_dependencies.py checks they agree).
lock: ## resolve requirements.txt + pyproject.toml into requirements.lock, with hashes
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(UV)
	$(BIN)/uv pip compile --quiet --universal --python-version $(LOCK_PYTHON) --generate-hashes \
	  --no-python-downloads --custom-compile-command 'make lock' \
	  --all-extras --group pyproject.toml:dev $(LOCK_ARGS) \
	  requirements.txt pyproject.toml -o $(LOCK)

demo: report ## the whole walkthrough on the sample: notebooks in order, then the HTML report

report: $(STAMP) ## run the notebooks with papermill into reports/ and render the HTML report
	$(BIN)/rental-kpis report --raw $(RAW) --lake $(LAKE) --out $(REPORTS)

run: $(STAMP) ## only the pipeline on the sample data (data/raw -> lake/), with its summary
	$(BIN)/rental-kpis run --raw $(RAW) --lake $(LAKE)

# Rooted at the project, so reports/ and docs/ open too; the file browser starts in notebooks/.
lab: $(STAMP) ## JupyterLab on notebooks/, with this project's virtualenv as the kernel
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
	  --MappingKernelManager.default_kernel_name=$(KERNEL) \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

browser: ## Chromium + ChromeDriver for the browser tests and the screenshot (apt; root or sudo)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver; }

tracer: ## strace, for the test that records the steps' file operations on the lake (apt)
	@command -v strace >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends strace; }

screenshot: demo ## a real make demo, then docs/report.png: the report's first screen (README)
	$(BIN)/python -m rental_kpis.report.notebooks $(REPORTS)/rental_kpis_report.html docs/report.png

# `make test` installs nothing on the system: without Chromium the browser tests skip and say
# that `make browser` installs it; without a Python 3.9 or strace, the run of the steps as the
# cluster runs them skips and says why (.ci/run installs both tools and requires that run).
test: $(STAMP) ## run the test suite (Spark, notebooks, a headless browser if present; no AWS)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# `make test` hands the longest test files out first, by the seconds this measures; run it after
# adding, splitting or much changing a test file, and commit tests/durations.json (it is written
# even when a test fails; make still fails then).
durations: $(STAMP) ## run the suite once and keep each test file's seconds in tests/durations.json
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder \
	  --junitxml=test-artifacts/durations.xml $(PYTEST_ARGS); status=$$?; \
	$(BIN)/python tests/durations.py test-artifacts/durations.xml tests/durations.json && exit $$status

fuzz: $(STAMP) ## the property-based CSV suite with many fresh random examples (before a release)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_csv_properties.py -n 0 -q $(PYTEST_ARGS)

check: lint test ## lint, then test

# What ships to EMR (the zip's files and emr_steps/) runs on the cluster's Python, 3.9 on
# emr-7.x: vermin fails on any construct or library call that needs a newer one.
lint: $(STAMP) ## ruff lint and format check; mypy; the shipped code's minimum Python (vermin)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/vermin --quiet --no-tips --violations --target=3.9- --eval-annotations \
	  $$($(BIN)/python -m rental_kpis.project) emr_steps

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

sample: $(STAMP) ## regenerate the committed sample under data/raw
	$(BIN)/rental-kpis generate --out $(RAW) --transactions 20000 --seed 42 --defect-rate 0.0003

bench: $(STAMP) ## Spark pipeline vs reference.py and plain DuckDB (BENCH_SIZES, BENCH_REPEATS); long
	$(BIN)/python benchmarks/run.py --sizes $(BENCH_SIZES) --repeats $(BENCH_REPEATS)

# `clean` deletes only what the project made. $(LAKE) goes only when it is a lake: it holds the
# lock file every run and crawl make (.rental_kpis.lock) and nothing but a lake's own entries;
# anything else is kept and named, and so is a lake that cannot be listed (find fails) or
# that holds $(RAW), the input (a lake made by `make run LAKE=data` before run refused it). In
# $(REPORTS) only the files a report writes go: the executed notebooks (named after
# notebooks/*.ipynb) and the HTML; never in notebooks/ itself (or a link to it), where they are
# the sources. Paths reach the shell through the environment, never pasted into the recipe,
# and a relative one gets ./ first, so that none is read as an option (-x) or found on CDPATH.
LAKE_ENTRIES := raw curated rejected processed runs query-results scripts emr-logs _switch \
  catalog.duckdb catalog.duckdb.wal .rental_kpis.lock .crawl-check-* .write-check
NOTEBOOKS_DIR := $(dir $(lastword $(MAKEFILE_LIST)))notebooks
REPORT_FILES := $(notdir $(wildcard $(NOTEBOOKS_DIR)/*.ipynb)) rental_kpis_report.html

clean: export CLEAN_LAKE := $(LAKE)
clean: export CLEAN_REPORTS := $(REPORTS)
clean: export CLEAN_RAW := $(RAW)
clean: export CLEAN_NOTEBOOKS := $(NOTEBOOKS_DIR)
clean: ## remove the lake (if this project made it), the reports it wrote and caches (keeps .venv)
	@lake="$$CLEAN_LAKE"; raw="$$CLEAN_RAW"; \
	case "$$lake" in ""|/*) ;; *) lake="./$$lake" ;; esac; \
	case "$$raw" in ""|/*) ;; *) raw="./$$raw" ;; esac; \
	if [ -n "$$lake" ] && [ -d "$$lake" ] && [ ! -L "$$lake" ]; then \
	  if [ ! -f "$$lake/.rental_kpis.lock" ]; then \
	    echo "kept $$lake: not a lake (no .rental_kpis.lock)"; \
	  elif ! real=$$(cd -P -- "$$lake" && pwd -P) || [ -z "$$real" ]; then \
	    echo "kept $$lake: its real path could not be found"; \
	  elif [ -n "$$raw" ] && [ -d "$$raw" ] && \
	      case "$$(cd -P -- "$$raw" && pwd -P)/" in "$$real"/*) true ;; *) false ;; esac; then \
	    echo "kept $$lake: it holds $$raw, the raw input (RAW)"; \
	  elif ! other=$$(find "$$lake" -mindepth 1 -maxdepth 1 \
	      $(foreach e,$(LAKE_ENTRIES),! -name '$(e)') -print -quit); then \
	    echo "kept $$lake: it could not be listed (find failed)"; \
	  elif [ -n "$$other" ]; then echo "kept $$lake: it holds $$other, which no lake holds"; \
	  else rm -rf -- "$$lake" && echo "removed lake $$lake"; fi; \
	elif [ -e "$$lake" ] || [ -L "$$lake" ]; then echo "kept $$lake: not a lake folder"; fi
	@reports="$$CLEAN_REPORTS"; notebooks="$$CLEAN_NOTEBOOKS"; \
	case "$$reports" in ""|/*) ;; *) reports="./$$reports" ;; esac; \
	case "$$notebooks" in /*) ;; *) notebooks="./$$notebooks" ;; esac; \
	if [ -n "$$reports" ] && [ -d "$$reports" ]; then \
	  if ! here=$$(cd -P -- "$$reports" && pwd -P) || [ -z "$$here" ]; then \
	    echo "kept the reports in $$reports: its real path could not be found"; \
	  elif [ "$$here" = "$$(cd -P -- "$$notebooks" 2>/dev/null && pwd -P)" ] || \
	      [ "$$reports" -ef "$$notebooks" ]; then \
	    echo "kept $$reports: it is notebooks/, whose notebooks are the sources, not a report"; \
	  else for name in $(REPORT_FILES); do rm -f -- "$$reports/$$name"; done; fi; \
	fi
	rm -rf test-artifacts spark-warehouse metastore_db .pytest_cache
