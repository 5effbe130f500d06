#!/usr/bin/env bash
# The GPU checks as one run on a lent GPU machine (about 5 minutes): the CUDA tests, then the
# training-step bench at batch 256 (every method against ce, DMUE in both branch layouts, with
# each step's operator count). Prepare here with `bash scripts/gpu-wheels.sh`, then call the
# device tool's run with carry [".whl"], timeout_s 540 and the command
# `bash scripts/gpu-check.sh`; the outputs come back from $OUT (gpu.txt, cuda-tests.txt,
# bench.txt).
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 AFFECTLAB_DATA=/tmp/affectlab-data
if [ "${SKIP_WHEELS:-0}" != 1 ]; then
    ls .whl/affectlab-*.whl > /dev/null || { echo "no .whl/affectlab-*.whl: run scripts/gpu-wheels.sh here and carry .whl" >&2; exit 2; }
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 2
    export PYTHONPATH=/tmp/site
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  "$py" -c "import torch, affectlab; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), affectlab.__file__)"
} | tee "$out/gpu.txt"
timeout "${TEST_TIMEOUT:-300}" "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 \
    | tee "$out/cuda-tests.txt"
tests=${PIPESTATUS[0]}
# the bench runs even when a test failed: both are worth the machine's minutes
timeout "${BENCH_TIMEOUT:-180}" "$py" -m affectlab.cli bench ${BENCH_ARGS:---batch-size 256 --steps 20} 2>&1 \
    | tee "$out/bench.txt"
bench=${PIPESTATUS[0]}
echo "cuda tests: exit $tests; bench: exit $bench" | tee -a "$out/gpu.txt"
[ "$tests" = 0 ] && [ "$bench" = 0 ]
