#!/usr/bin/env bash
# Fetch, here, the wheels the lent GPU machine lacks for `scripts/gpu-check.sh` (its image has
# PyTorch, numpy, pandas, pyarrow, typer, pytest, hypothesis, opencv, but not these), at the
# versions of requirements.lock, for its Python 3.12 on x86-64, into .whl/ (ignored by git).
# Then call the device tool's run with carry [".whl"] and the command `bash scripts/gpu-check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
names="pydantic pydantic-core annotated-types typing-inspection typing-extensions soundfile cffi pycparser kaldi-native-fbank"
pins=()
for name in $names; do
    pin=$(grep -iE "^${name}==" requirements.lock) || { echo "no pin for $name in requirements.lock" >&2; exit 1; }
    pins+=("$pin")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    --platform any -d .whl "${pins[@]}"
ls -l .whl
# affectlab itself as a wheel (core/ installed as affectlab, with the app and the weights), so
# the machine needs no build backend of a given version
rm -f .whl/affectlab-*.whl
rm -rf build  # setuptools scratch: a stale build/lib would put deleted modules in the wheel
"${PYTHON:-.venv/bin/python}" -m pip wheel -q --no-deps --no-build-isolation -w .whl .
du -sh .whl
