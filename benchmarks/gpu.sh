#!/usr/bin/env bash
# The GPU measurement, for a CUDA machine with JAX but without TensorFlow or internet
# (the H200 this project is measured on): Keras on JAX from carried wheels.
#
# Here, once, on a connected machine, in the repository's root (the wheels go to the
# ignored .whl/ folder; see ../shared/device/README.md):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     keras==3.15.1 namex optree optuna==5.0.0 alembic mako colorlog sqlalchemy \
#     pydantic pydantic-core annotated-types typing-inspection
# There:
#   bash benchmarks/gpu.sh OUT_DIR            # figures in OUT_DIR/gpu.json and gpu.md
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-results}}"
if ! python3 -c "import keras, optuna, pydantic" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONPATH="${PYTHONPATH:-$PWD}:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_bench.py --out "$out" "${@:2}"
