# The two set-up commands are `make demo` and `make test`: each creates .venv and installs
# what it needs from requirements*.txt (exact pins, transitive ones in constraints.txt).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO   := cache/demo
# How long `make demo` runs: long enough to open the dashboard it prints; 0 runs until Ctrl-C.
DEMO_SECONDS ?= 60

.PHONY: demo test lint typecheck unit docs-check bench proof clean help

help:
	@echo "make demo   run the daemon against the built-in simulated exchange (offline), with"
	@echo "            its dashboard; DEMO_SECONDS=0 runs until Ctrl-C (default 60)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make proof  the long run: soak, crash campaign, fuzzing (about 1.5 h; see README)"

$(VENV)/.runtime: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime
	rm -rf $(DEMO).db $(DEMO).db-wal $(DEMO).db-shm $(DEMO).cache
	$(PY) run_paper_trader.py demo --seconds $(DEMO_SECONDS) --faults --db $(DEMO).db
	@echo "--- the same summary, rebuilt from the database:"
	$(PY) run_paper_trader.py report --db $(DEMO).db

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check paper_trader tests bench tools run_paper_trader.py
	$(VENV)/bin/ruff format --check paper_trader tests bench tools run_paper_trader.py

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy --strict paper_trader

# The suite on TEST_WORKERS pytest-xdist workers: most system tests wait on a daemon (a market
# at x300, Telegram's retry_after, a restart), so three share two cores well; work stealing
# evens out the long tests. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 3

unit: $(VENV)/.dev
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal

# README's generated settings table, .env.example against Settings, the benchmark table, and
# README's runnable recipes (tools/docs_check.py says how a recipe is marked).
docs-check: $(VENV)/.runtime
	$(PY) tools/docs_check.py

test: lint typecheck docs-check unit

# Each benchmark with goals writes its rows to bench/results/; bench/results.py turns them into
# bench/results.md and README's table.
RESULTS := bench/results

bench: $(VENV)/.dev
	mkdir -p $(RESULTS)
	$(PY) bench/replay.py
	$(PY) bench/ingest.py
	$(PY) bench/startup.py
	$(PY) bench/features.py --json $(RESULTS)/features.json
	$(PY) bench/prediction.py
	$(PY) bench/retrain.py --json $(RESULTS)/retrain.json
	$(PY) bench/pipeline.py --json $(RESULTS)/pipeline.json
	$(PY) bench/stages.py --json $(RESULTS)/stages.json
	$(PY) bench/floor.py --json $(RESULTS)/floor.json
	$(PY) bench/live.py --json $(RESULTS)/live.json
	$(PY) bench/monitor.py --json $(RESULTS)/monitor.json
	$(PY) bench/writer.py --json $(RESULTS)/writer.json
	$(PY) bench/notify.py
	$(PY) bench/status.py
	$(PY) bench/results.py

# The proof of months of running (not part of `make test`: it takes hours): each prints its
# figures next to their goals and writes its rows to bench/results/ like a benchmark.
proof: $(VENV)/.dev
	mkdir -p $(RESULTS)
	$(PY) bench/soak.py --json $(RESULTS)/soak.json
	$(PY) bench/crash.py --json $(RESULTS)/crash.json
	$(PY) bench/fuzz.py --json $(RESULTS)/fuzz.json
	$(PY) bench/results.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(DEMO).*
