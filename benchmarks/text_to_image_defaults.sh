#!/usr/bin/env bash
# The README's StackGAN commands as a user types them, at their default lengths, timed, then
# measured (held-out prompts read by a judge trained on held-out images only, zoo eval of both
# stages, the stages picture): python benchmarks/text_to_image.py defaults does it all and writes
# benchmarks/results/stackgan-defaults[-seedN].json.
# Usage: benchmarks/text_to_image_defaults.sh OUT_DIR [more options of `defaults`, e.g. --set d_projection=false]
# (SEED=N: both stages trained with --seed N, for a second measurement of the same commands;
# FRESH_PREP=1: zoo prep --force, to time the first preparation; about 45 minutes here)
set -euo pipefail
out=${1:?give a folder for the runs}
shift
py=${PYTHON:-.venv/bin/python}
exec "$py" benchmarks/text_to_image.py defaults "$out" ${SEED:+--seed "$SEED"} ${FRESH_PREP:+--fresh-prep} "$@"
