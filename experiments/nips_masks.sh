#!/usr/bin/env bash
# nips, mask sampling (paper: 277.28).
# Chosen on the validation NLL by `python experiments/search.py nips_masks` from its grid, widened in
# a second round with the authors' mask-conditioning term and two hidden layers (see
# results/search/nips_masks.json: every configuration's validation and test NLL).
# Chosen: cond_mask=True-direct=True-masks=32-optimizer=adagrad (validation 276.1266).
source "$(dirname "$0")/common.sh"
run_row nips_masks --dataset nips --hidden 500 --init orthogonal --optimizer adagrad --lr 0.01 --direct --cond-mask --masks 32 "$@"
