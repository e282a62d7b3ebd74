# The two set-up commands of the README: `make quickstart` and `make test`.
# Each needs only python3: `setup` makes .venv when it is missing and installs the
# project with the extras the target needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STORAGE ?= sqlite:///sweeps.db

.PHONY: setup setup-test quickstart test test-long test-optuna-lowest bench clean

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
	$(VENV)/bin/sweep report quickstart --storage $(STORAGE) --output quickstart.html

# The whole suite on TensorFlow (the 15 slowest tests listed); one of its tests runs the
# trainer's backend-portable tests again on JAX, but for the slow ones (`make test-long`).
test: setup-test
	$(PY) -m pytest -q -n auto --dist loadgroup --durations=15 -m "not long"

# What CI adds when it has time: the fuzz tests with 400 examples each, every
# benchmark in its smallest mode (tests/benchmarks/), the slow trainer tests on JAX.
test-long: setup-test
	$(PY) -m pytest -q -n auto --dist loadgroup --hypothesis-profile=long -m "fuzz or long" tests
	KERAS_BACKEND=jax $(PY) -m pytest -q -m "backend and slow" tests/trainer

# The runner's tests (those that drive Optuna's storage, sampler and pruner) on the lowest
# Optuna that pyproject.toml allows: a venv that sees .venv's packages (a .pth file)
# but has its own Optuna, so that nothing else is installed twice.
OPTUNA_LOWEST := 4.0.0
LOW_VENV := .venv-optuna-$(OPTUNA_LOWEST)
OPTUNA_TESTS ?= tests/runner

$(LOW_VENV)/.installed: $(VENV)/.installed-test
	$(PY) -m venv --without-pip $(LOW_VENV)
	$(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
	  > "$$($(LOW_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/main-venv.pth"
	$(PY) -m pip --python $(LOW_VENV)/bin/python install -q --no-deps optuna==$(OPTUNA_LOWEST)
	touch $@

test-optuna-lowest: $(LOW_VENV)/.installed
	$(LOW_VENV)/bin/python -c 'import optuna; assert optuna.__version__ == "$(OPTUNA_LOWEST)", optuna.__version__'
	PYTHONPATH=$(CURDIR) $(LOW_VENV)/bin/python -m pytest -q $(OPTUNA_TESTS)

bench: setup-test
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) sweeps.db sweeps.db-* checkpoints quickstart.html
