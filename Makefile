# The two set-up commands of the README: `make quickstart` and `make test`.
# Each needs only python3: `setup` makes .venv when it is missing and installs the
# project with the extras the target needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STORAGE ?= sqlite:///sweeps.db

.PHONY: setup setup-test quickstart test test-long bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-cpu: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[cpu]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-cpu
	$(PY) -m pip install -q -e '.[cpu,jax,test]'
	touch $@

setup: $(VENV)/.installed-cpu

setup-test: $(VENV)/.installed-test

quickstart: setup
	$(VENV)/bin/sweep check sweeps/quickstart.toml
	$(VENV)/bin/sweep run sweeps/quickstart.toml --storage $(STORAGE)

# The whole suite on TensorFlow (the 15 slowest tests listed), then the trainer's
# backend-portable tests again on JAX, but for the slow ones (`make test-long` has them).
test: setup-test
	$(PY) -m pytest -q --durations=15 -m "not long"
	KERAS_BACKEND=jax $(PY) -m pytest -q -m "backend and not slow" tests/trainer

# What CI adds when it has time: the fuzz tests with 400 examples each, every
# benchmark in its smallest mode (tests/benchmarks/), the slow trainer tests on JAX.
test-long: setup-test
	$(PY) -m pytest -q --hypothesis-profile=long -m "fuzz or long" tests
	KERAS_BACKEND=jax $(PY) -m pytest -q -m "backend and slow" tests/trainer

bench: setup-test
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) sweeps.db sweeps.db-* checkpoints
