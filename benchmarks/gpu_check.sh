#!/usr/bin/env bash
# The trainer on a GPU, on the JAX backend: `sepspec bench` and short `sepspec train` runs of specs/base.yaml and
# specs/residual.yaml at float32 and bfloat16, a table of images/s, seconds per epoch and accuracy (docs/gpu.md).
#
#   python benchmarks/gpu_bundle.py         # here, once: .gpu/ (wheels the device lacks, a CIFAR-10 subset)
#   bash benchmarks/gpu_check.sh            # on the GPU machine (carry .gpu): under 8 minutes
#   bash benchmarks/gpu_check.sh --cpu      # anywhere, tiny limits: is the check itself in order?
#
# Installs the carried wheels into a folder only where Keras or pydantic is missing; writes the table and the logs
# under $OUT (else .gpu/out). PYTHON picks the interpreter (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if ! "$py" -c "import keras, pydantic, yaml" 2>/dev/null; then
    site=${TMPDIR:-/tmp}/sepspec-site
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .gpu/wheels/*.whl \
        || { echo "gpu_check: cannot install the carried wheels (.gpu/wheels: run benchmarks/gpu_bundle.py)"; exit 1; }
    export PYTHONPATH=$site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=jax PYTHONUNBUFFERED=1 SEPSPEC_OFFLINE=1
[ "${1:-}" = --cpu ] && export JAX_PLATFORMS=cpu
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import sys, jax, keras; print('python', sys.version.split()[0], 'jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
exec "$py" benchmarks/gpu_check.py --out "${OUT:-.gpu/out}" "$@"
