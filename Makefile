# Two commands on a fresh machine (Python 3.11 + Java 17): `make demo` and `make test`.
PYTHON ?= python3
STAMP := .install.stamp

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

.PHONY: install demo test lint bench
install: $(STAMP)

## Generate a demo region and run the whole nightly job on it (lake under ./demo).
demo: $(STAMP)
	$(PYTHON) -m jobs.cli demo --out demo

## Run the test suite (one SparkSession for the whole run).
test: $(STAMP)
	$(PYTHON) -m pytest

lint: $(STAMP)
	$(PYTHON) -m ruff check jobs schemas quality tests bench deploy

## Benchmarks at 1M and 4M cases (long; results in bench/results/).
bench: $(STAMP)
	DRG_SPARK_MASTER=local[2] $(PYTHON) bench/bench_nightly.py --cases 1000000 4000000
	DRG_SPARK_MASTER=local[2] $(PYTHON) bench/bench_group.py --sizes 1000000 4000000
	DRG_SPARK_MASTER=local[2] $(PYTHON) bench/bench_quality.py
	DRG_SPARK_MASTER=local[2] $(PYTHON) bench/bench_price.py
