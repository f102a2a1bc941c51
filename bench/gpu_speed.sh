#!/bin/bash
# The GPU-speed figures of the README (issue #15) in one device call, under a time budget:
#
#   1. gpt2-124m, 16 x 1024, bf16, compiled: our step against the in-process nanoGPT-style
#      reference (bench/reference_gpt.py), interleaved -> vs_reference and MFU;
#   2. the same step with the fused LM head + loss forced on (objectives/fused_loss.py; in a
#      compiled run its per-chunk softmax pass is compiled too) against Inductor's compiled
#      loss (`objective.fused_loss` auto leaves it off when compiled; this measures whether
#      auto should turn it on);
#   3. llama-1b, 8 x 2048: fused head + loss on against off -> tokens/s, MFU and peak memory
#      (the 128k-vocabulary logits are what the fused op never holds);
#   4. the sync-free / rollback / CUDA-graph / compiled-fused-head tests on CUDA (the guard's
#      decisions on the device; reduce-overhead training bitwise like the default compile
#      mode; the fused head's compiled chunk pass training like the eager op);
#   5. cudagraphs: gpt2-124m with train.compile_mode=reduce-overhead (CUDA graphs) against
#      the default mode, interleaved (whether the launch gaps of the profile are worth it);
#   6. autotune: the same with max-autotune-no-cudagraphs (Inductor's matmul search, whose
#      Triton templates can fuse bias/GELU into the matmul), then the top kernels of each;
#   7. op: the LM head + loss alone (bench/fused_loss_op.py --compiled) at gpt2-124m's and
#      llama-1b's head shapes: plain / fused op, eager and as a compiling run has them;
#   8. moe: the MoE layer's sorted dispatch, dropless as CUDA's grouped GEMM, against a
#      per-expert loop (bench/moe_dispatch.py --grouped on).
#
# Usage (on a machine with one CUDA GPU, from the repository root; $OUT receives the logs):
#   BUDGET=540 OUT=/tmp/out [TEXT_FILE=tinyshakespeare.txt] [STAGES="..."] bash bench/gpu_speed.sh
# STAGES picks and orders them (default "reference fused llama tests"; a second call:
# STAGES="op moe cudagraphs autotune").
# Packages missing from the machine's Python can be given as wheels in .whl/ (installed with
# --no-index into /tmp/site). Each stage is skipped, and says so, when the budget cannot fit it.
# SMOKE=1 runs every stage on the CPU at tiny shapes (one round each: no figure means anything)
# to check the script's plumbing before a GPU's scarce minutes are spent on it.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src:/tmp/site
OUT=${OUT:-/tmp/gpu_speed}; mkdir -p "$OUT"
START=$(date +%s); DEADLINE=$((START + ${BUDGET:-540}))
el() { echo $(( $(date +%s) - START )); }
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || echo "wheels from .whl/ not installed"
fi
TEXT=/tmp/gpu_speed_text.txt  # TEXT_FILE's text (a GPU machine may lack ../shared), else ~4 MB of the
# built-in corpus (the Python stdlib's sources, what `make demo` trains on), byte-tokenized
if [ -f "${TEXT_FILE:-}" ]; then cp "$TEXT_FILE" "$TEXT"; else python3 - "$TEXT" <<'EOF'
import sys

from llmtrain.data.builtin import builtin_corpus_documents

parts, size = [], 0
for doc in builtin_corpus_documents():
    parts.append(doc.text)
    size += len(doc.text)
    if size > 4_000_000:
        break
open(sys.argv[1], "w").write("\n".join(parts))
EOF
fi
DEV=cuda GPT2="--preset gpt2-124m --micro-batch 16 --rounds 5 --round-steps 20"
LLAMA="--preset llama-1b --micro-batch 8 --rounds 3 --round-steps 10"
OP1="--width 768 --shapes 16384x50304" OP2="--width 2048 --shapes 16384x128256"
if [ "${SMOKE:-0}" = 1 ]; then
  DEV=cpu GPT2="--preset gpt2-tiny --micro-batch 2 --seq 64 --rounds 1 --round-steps 1 --warmup-steps 1"
  LLAMA="--preset llama-tiny --micro-batch 2 --seq 64 --rounds 1 --round-steps 1 --warmup-steps 1"
  OP1="--width 16 --shapes 64x300" OP2="--width 16 --shapes 64x600"
else
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/env.txt"
fi
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')" | tee -a "$OUT/env.txt"

stage() { # name need_secs max_secs bench-args...
  local name=$1 need=$2 max=$3; shift 3
  local left=$((DEADLINE - $(date +%s)))
  if [ $left -lt $need ]; then echo "=== $name SKIPPED ($left s left)"; return 9; fi
  [ $max -gt $left ] && max=$left
  echo "=== $name (t=$(el)s, limit ${max}s)"
  timeout $max python3 bench/engine_throughput.py --text "$TEXT" --device $DEV "$@" \
    > "$OUT/$name.txt" 2>&1
  local rc=$?; echo "rc=$rc ($(el)s)"; grep -v '^{' "$OUT/$name.txt" | tail -5
  grep '^{' "$OUT/$name.txt" >> "$OUT/results.jsonl"; return $rc
}
cuda_tests() {
  local left=$((DEADLINE - $(date +%s)))
  if [ $left -le 60 ]; then echo "=== cuda logic tests SKIPPED ($left s left)"; return 9; fi
  echo "=== cuda logic tests (t=$(el)s)"
  LLMTRAIN_TEST_DEVICE=$DEV timeout $((left - 5)) python3 -m pytest -q -p no:cacheprovider -rf \
    tests/integration/test_sync_free.py tests/integration/test_engine_rollback.py \
    tests/integration/test_cuda_graph_mode.py tests/integration/test_compiled_fused_head.py \
    > "$OUT/cuda_tests.txt" 2>&1
  echo "rc=$?"; tail -3 "$OUT/cuda_tests.txt"
}
for s in ${STAGES:-reference fused llama tests}; do
  case $s in
    reference) stage gpt2_reference 90 130 $GPT2 --reference ;;
    fused) stage gpt2_fused_vs_inductor 90 130 $GPT2 --unfused-loss --set objective.fused_loss=on ;;
    llama) stage llama_fused_vs_unfused 120 170 $LLAMA --unfused-loss --set objective.fused_loss=on ;;
    tests) cuda_tests ;;
    cudagraphs) stage gpt2_cudagraphs 120 200 $GPT2 --set train.compile_mode=reduce-overhead \
      --against train.compile_mode=default ;;
    autotune) stage gpt2_autotune 150 300 $GPT2 --profile 3 --set train.compile_mode=max-autotune-no-cudagraphs \
      --against train.compile_mode=default ;;
    op) left=$((DEADLINE - $(date +%s)))
      if [ $left -lt 90 ]; then echo "=== op SKIPPED ($left s left)"; continue; fi
      echo "=== op (t=$(el)s)"
      timeout $(( left < 150 ? left : 150 )) python3 bench/fused_loss_op.py --device $DEV \
        --compiled --rounds 9 $OP1 > "$OUT/op.txt" 2>&1
      left=$((DEADLINE - $(date +%s)))
      [ $left -gt 30 ] && timeout $(( left < 120 ? left : 120 )) python3 bench/fused_loss_op.py \
        --device $DEV --compiled --rounds 5 $OP2 >> "$OUT/op.txt" 2>&1
      echo "rc=$? ($(el)s)"; grep -v '^{' "$OUT/op.txt" | tail -6
      grep '^{' "$OUT/op.txt" >> "$OUT/results.jsonl" ;;
    moe) left=$((DEADLINE - $(date +%s)))
      if [ $left -lt 45 ]; then echo "=== moe SKIPPED ($left s left)"; continue; fi
      echo "=== moe (t=$(el)s)"
      timeout $(( left < 90 ? left : 90 )) python3 bench/moe_dispatch.py --device $DEV \
        --rounds 15 --grouped on > "$OUT/moe.txt" 2>&1
      echo "rc=$? ($(el)s)"; grep -v '^{' "$OUT/moe.txt" | tail -5
      grep '^{' "$OUT/moe.txt" >> "$OUT/results.jsonl" ;;
    *) echo "=== unknown stage $s (reference fused llama tests op moe cudagraphs autotune)" ;;
  esac
done
echo "=== done t=$(el)s; logs in $OUT"
