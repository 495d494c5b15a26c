#!/usr/bin/env bash
# Issue 16's checks for a session lent a GPU machine, as one short script: the CUDA path end
# to end (train, resume, mixed precision, --compile, torchrun over every GPU, sample, eval)
# and the images/s table on the GPU (the 64x64 DCGAN at batch 512 with bf16 and compile is
# the 100,000 images/s target on an H100). It has not run yet: no session has had a GPU.
#
#   make setup && ZOO_DATA_DIR=/path/with/mnist bash benchmarks/gpu_check.sh [OUT]
set -euo pipefail
OUT=${1:-/tmp/zoo-gpu-check}
ZOO=".venv/bin/python -m zoo"
export WANDB_MODE=disabled
GPUS=$(.venv/bin/python -c "import torch; print(torch.cuda.device_count())")
[ "$GPUS" -ge 1 ] || { echo "no CUDA GPU here"; exit 1; }
step() { echo; echo "== $*"; }

step "train on cuda, then resume"
$ZOO train dcgan --data mnist --steps 300 --device cuda --no-wandb --out "$OUT/run" --force
$ZOO train dcgan --resume "$OUT/run" --steps 400 --device cuda --no-wandb
step "bf16 + --compile; fp16 with its loss scaler (a gradient penalty: its critic stays eager)"
$ZOO train dcgan --data mnist --steps 300 --device cuda --precision bf16 --compile --no-wandb --out "$OUT/bf16" --force
$ZOO train wgan-gp --data mnist --steps 100 --device cuda --precision fp16 --compile --no-wandb --out "$OUT/fp16" --force
$ZOO train wgan-gp --resume "$OUT/fp16" --steps 120 --device cuda --no-wandb
step "torchrun over $GPUS GPU(s); the run resumes on one"
.venv/bin/torchrun --standalone --nproc_per_node "$GPUS" -m zoo train dcgan --data mnist --steps 300 --batch-size $((128 * GPUS)) --no-wandb --out "$OUT/ddp" --force
$ZOO train dcgan --resume "$OUT/ddp" --steps 320 --device cuda --no-wandb
step "sample and eval (one process, then shared over the GPUs: the same figures)"
$ZOO sample "$OUT/run" --n 64 --device cuda --out "$OUT/samples" --force
$ZOO eval "$OUT/run" -n 2000 --features random --device cuda
cp "$OUT/run/eval.json" "$OUT/eval-one.json"
.venv/bin/torchrun --standalone --nproc_per_node "$GPUS" -m zoo eval "$OUT/run" -n 2000 --features random
.venv/bin/python -c "import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); print('eval same on', sys.argv[2], all(a[k]==b[k] for k in ('fid','kid','precision','recall')))" "$OUT/eval-one.json" "$OUT/run/eval.json"
step "images/s on the GPU per option (dcgan 28 and 64 px, wgan-gp, pix2pix), then the target"
.venv/bin/python benchmarks/step_speed.py plugins --device cuda --steps 50 --warmup 5
.venv/bin/python benchmarks/step_speed.py plugins dcgan-64 --device cuda --batch-size 512 --compile --steps 100 --warmup 10
