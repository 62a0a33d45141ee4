#!/usr/bin/env bash
# The trainer on a GPU (docs/gpu.md): `sepspec bench` and `sepspec train` runs on JAX and PyTorch, a table of
# images/s, seconds per epoch, wall times and accuracies, in two parts of one device call each.
#
#   python benchmarks/gpu_bundle.py                  # here, once: .gpu/wheels (what the device lacks) and a subset
#   python benchmarks/gpu_data.py pack               # here, once: the whole CIFAR-10 in two parts (.gpu/cifar10-webp)
#   bash benchmarks/gpu_check.sh unpack PART... --out DIR [--partial]   # there: CIFAR-10's layout from the parts
#   bash benchmarks/gpu_check.sh --part measure --data DIR     # there: benches, start-up, seeds at once, the NaN
#   bash benchmarks/gpu_check.sh --part accuracy --data DIR    # there: time to accuracy on the whole set
#   bash benchmarks/gpu_check.sh --cpu [--part P]    # anywhere, tiny limits: is the check itself in order?
#
# Installs the carried wheels into $TMPDIR/sepspec-site only where Keras or pydantic is missing (kept for the next
# call on the same machine); writes the table and the logs under $OUT (else .gpu/out). PYTHON picks the
# interpreter (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
site=${TMPDIR:-/tmp}/sepspec-site
if ! "$py" -c "import keras, pydantic, yaml" 2>/dev/null; then
    if ! PYTHONPATH=$site "$py" -c "import keras, pydantic, yaml" 2>/dev/null; then
        "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
            .gpu/wheels/*.whl || { echo "gpu_check: cannot install the carried wheels (run benchmarks/gpu_bundle.py)"; exit 1; }
    fi
    export PYTHONPATH=$site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 SEPSPEC_OFFLINE=1
if [ "${1:-}" = unpack ]; then
    shift
    exec "$py" benchmarks/gpu_data.py unpack "$@"
fi
for a in "$@"; do [ "$a" = --cpu ] && export JAX_PLATFORMS=cpu; done
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
KERAS_BACKEND=jax "$py" -c "import sys, jax, keras; print('python', sys.version.split()[0], 'jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>/dev/null
exec "$py" benchmarks/gpu_check.py --out "${OUT:-.gpu/out}" "$@"
