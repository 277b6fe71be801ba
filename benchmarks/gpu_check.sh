#!/usr/bin/env bash
# The prepared GPU check (one call of the device tool): the search benchmark at the bench's default
# settings and at the paper's search-network size, plus a short real search on CUDA.
# Usage there: bash benchmarks/gpu_check.sh "$OUT"    (wheels for missing packages in .whl/, if any)
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
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
python3 benchmarks/bench_table.py space=cnn12 device=cuda 2>"$OUT/bench_cnn12.json" | tee "$OUT/bench_cnn12.md"
python3 benchmarks/bench_table.py space=cnn12 device=cuda channels=16 layers=8 batch_size=64 eval_throughput=false \
  2>"$OUT/bench_cnn12_paper.json" | tee "$OUT/bench_cnn12_paper.md"
python3 benchmarks/bench_table.py space=cnn7 device=cuda channels=16 layers=8 batch_size=64 eval_throughput=false \
  2>"$OUT/bench_cnn7_paper.json" | tee "$OUT/bench_cnn7_paper.md"
python3 - <<'PY' 2>&1 | tee "$OUT/search.txt"
import time
from nasp.config import build_config, parse_overrides
from nasp.search import start_run
for algo in ("nasp", "darts-1st"):
    t = time.time()
    cfg = build_config(parse_overrides([f"algorithm={algo}", "epochs=2", "out=/tmp/gpuruns", "device=cuda"]))
    end = start_run(cfg, console=False).fit()
    print(algo, end.status, "val_acc", end.val_acc, "seconds", round(time.time() - t, 1))
PY
