#!/usr/bin/env bash
# The prepared GPU check (one call of the device tool, under 8 minutes on an H200): issue 13's parts in
# benchmarks/gpu_check.py (graphs against eager, host syncs, `nasp bench` at the paper's search size with every
# speed variant, the evaluation network eager/compile/graphs at the paper's size, the graph cache's hit rate in a
# short real search), written to $OUT/gpu_check.json part by part.
# Usage there:  bash benchmarks/gpu_check.sh "$OUT" [parts]      e.g. parts 1,2,3
# The device has torch but not pydantic/rich: carry wheels in .whl/ (made here, Python 3.12 there):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 -d .whl pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 \
#     typing_extensions==4.16.0 typing-inspection==0.4.5 pyyaml==6.0.4 rich==15.0.0 pygments==2.21.0 \
#     markdown-it-py==4.3.0 mdurl==0.1.2
# and call the device tool with carry [".whl"] and command: bash benchmarks/gpu_check.sh "$OUT"
set -uo pipefail
OUT=${1:-/tmp/gpu_out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
timeout 560 python3 benchmarks/gpu_check.py "$OUT" ${2:-} 2>&1 | tee "$OUT/gpu_check.log"
