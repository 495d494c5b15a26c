#!/usr/bin/env bash
# The README's StackGAN commands as a user types them, at their default lengths, timed,
# then measured: python benchmarks/text_to_image.py measure / stages, and zoo eval (FID at
# 32 px, stage I upsampled as it gives its images). Usage: benchmarks/text_to_image_defaults.sh OUT_DIR
# (SEED=N: both stages trained with --seed N, for a second measurement of the same commands)
set -euo pipefail
out=${1:?give a folder for the runs}
zoo=${ZOO:-.venv/bin/zoo}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
stamp() { date +%s.%N; }
t0=$(stamp); $zoo prep captions:fashion > "$out/prep.log" 2>&1; t1=$(stamp)
echo "prep: $(echo "$t1 - $t0" | bc) s"
$zoo train stackgan --data captions:fashion --set stage=1 --out "$out/stackgan-stage1" --no-wandb ${SEED:+--seed "$SEED"} > "$out/stage1.log" 2>&1
t2=$(stamp); echo "stage 1: $(echo "$t2 - $t1" | bc) s"
$zoo train stackgan --data captions:fashion --set stage=2 --init-from "$out/stackgan-stage1" \
    --out "$out/stackgan-stage2" --no-wandb ${SEED:+--seed "$SEED"} > "$out/stage2.log" 2>&1
t3=$(stamp); echo "stage 2: $(echo "$t3 - $t2" | bc) s"
for stage in 1 2; do
    $py benchmarks/text_to_image.py measure "$out/stackgan-stage$stage" > "$out/measure$stage.json"
    $zoo eval "$out/stackgan-stage$stage" > "$out/eval$stage.log" 2>&1
done
$py benchmarks/text_to_image.py stages "$out/stackgan-stage1" "$out/stackgan-stage2"
echo "done: $(echo "$(stamp) - $t0" | bc) s"
