#!/usr/bin/env bash
# The checks to run on a machine with an NVIDIA GPU, all under one `timeout 480` (8 minutes;
# about 3-4 expected — not yet measured: bench/README.md, 'gpu_check.sh'):
#   1. nvidia-smi, and what PyTorch sees;
#   2. the CUDA tests: python -m pytest -m cuda (tests/models/test_dcn_cuda.py and the cuda
#      cases of tests/models/test_dcn.py);
#   3. bench/gpu_throughput.py, short: the plain PyTorch loop against nnlab in float32 and
#      bfloat16 on the GPU, and the GPU's matmul rates;
#   4. a DCN sweep on the GPU (bench/gpu_sweep.yaml: 4 jobs) through
#      `nnlab sweep --jobs N`, N the GPUs PyTorch sees — one job per GPU at a time;
#   5. its results read back: `nnlab runs --jobs`, every job completed on the GPU.
# A step that fails is recorded and the next one runs; a summary of every step ends the
# output, and the exit status is 0 only if every step passed (124: out of time).
#
# It installs nothing. Run it from anywhere, with nnlab and its test extra installed in the
# Python on PATH (in the repository: `pip install -e '.[test]'`, or its virtual environment
# activated). It needs no network: it trains only on synthetic images that
# gpu_throughput.py writes as IDX files.
#
#     bash bench/gpu_check.sh [OUT]
#
# OUT (default: a new folder under /tmp) receives each step's log, the sweep's runs and
# summary.txt. GPU_CHECK_DEVICE=cpu runs the same steps on the CPU, shrunk, to check this
# script where no GPU is lent (steps 1 and 2 then only report; its numbers mean nothing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device="${GPU_CHECK_DEVICE:-cuda}"
if [ "$device" != cuda ] && [ "$device" != cpu ]; then
  echo "gpu_check.sh: GPU_CHECK_DEVICE is '$device'; allowed: cuda, cpu" >&2
  exit 2
fi

if [ "${GPU_CHECK_INNER:-0}" != 1 ]; then  # the outer shell: the time limit and the summary
  out="${1:-$(mktemp -d /tmp/gpu_check.XXXXXX)}"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  : >"$out/summary.txt"
  start=$SECONDS
  rc=0
  GPU_CHECK_INNER=1 timeout --kill-after=10 480 bash "${BASH_SOURCE[0]}" "$out" || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "TIMEOUT  the checks ran past 480 s and were stopped" >>"$out/summary.txt"
  fi
  echo
  echo "== gpu_check.sh summary: $((SECONDS - start)) s, device $device, output in $out =="
  cat "$out/summary.txt"
  exit "$rc"
fi

out="$1"
cd "$repo"
failed=0

# step NAME COMMAND...: run it, its output to the terminal and to OUT/NAME.log; one line
# for the summary: ok or FAIL, exit status, seconds.
step() {
  local name="$1" t0=$SECONDS
  shift
  echo
  echo "== $name: $*"
  if "$@" 2>&1 | tee "$out/$name.log"; then
    printf 'ok       %-12s %4d s\n' "$name" $((SECONDS - t0)) >>"$out/summary.txt"
  else
    local status=$?
    printf 'FAIL     %-12s %4d s  exit %d, see %s\n' "$name" $((SECONDS - t0)) "$status" \
      "$out/$name.log" >>"$out/summary.txt"
    failed=1
  fi
}

# shellcheck disable=SC2329  # invoked through step
cuda_seen() {
  python - "$device" <<'PY'
import sys

import torch

print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.device_count()} GPU(s) visible")
for i in range(torch.cuda.device_count()):
    print(f"  cuda:{i}: {torch.cuda.get_device_name(i)}")
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit("PyTorch sees no CUDA GPU: the cuda tests would only skip")
PY
}

if [ "$device" = cuda ]; then
  step nvidia-smi nvidia-smi
  gpus="$(python -c 'import torch; print(torch.cuda.device_count())')"
  throughput=(--images 10000 --rounds 2)
  data_images=3000
  sweep_sets=()
else
  gpus=2  # the sweep's --jobs on the CPU
  throughput=(--device cpu --images 200 --rounds 1 --matmul 128)
  data_images=600
  sweep_sets=(-s train.device=cpu -s train.epochs=1 -s data.val_size=100)
fi
step torch cuda_seen
step cuda-tests python -m pytest -m cuda -q -rs -p no:cacheprovider
step throughput python bench/gpu_throughput.py "${throughput[@]}"
step data python bench/gpu_throughput.py --write-idx "$out/data" --images "$data_images"
# with no GPU seen, --jobs 1: the sweep then says so itself, in one line
step sweep python -m nnlab sweep bench/gpu_sweep.yaml --jobs "$((gpus > 0 ? gpus : 1))" \
  --runs-dir "$out/runs" \
  -s "data.root=$out/data" "${sweep_sets[@]}"
step runs python -m nnlab runs --runs-dir "$out/runs" --jobs \
  --columns name,status,time,train.precision,model.init,test_acc
step sweep-check python - "$out/runs" "$device" <<'PY'
import json
import sys
from pathlib import Path

runs, device = Path(sys.argv[1]), sys.argv[2]
folders = sorted(runs.glob("*gpu_check*"))
if len(folders) != 1:
    sys.exit(f"expected one gpu_check sweep under {runs}, found {len(folders)}")
jobs = json.loads((folders[0] / "state.json").read_text())["jobs"]
problems = []
for job_id, job in jobs.items():
    if job["status"] != "completed":
        problems.append(f"{job_id}: {job['status']}")
        continue
    meta = json.loads((folders[0] / job["run"] / "meta.json").read_text())
    summary = json.loads((folders[0] / job["run"] / "summary.json").read_text())
    shown = meta["environment"]["device"]
    print(f"{job_id}: {shown}, {summary['images_per_second']:,.0f} images/s, "
          f"test_acc {summary['final']['test_acc']:.3f}")
    if not shown.startswith(device):
        problems.append(f"{job_id} ran on {shown}, not {device}")
if len(jobs) != 4 or problems:
    sys.exit(f"{len(jobs)} jobs (4 expected); " + "; ".join(problems))
PY
exit "$failed"
