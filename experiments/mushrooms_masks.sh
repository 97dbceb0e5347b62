#!/usr/bin/env bash
# mushrooms, mask sampling (paper: 9.69).
# Chosen on the validation NLL by `python experiments/search.py mushrooms_masks` from its grid
# (see results/search/mushrooms_masks.json: every configuration's validation and test NLL).
# Chosen: direct=True-masks=32-optimizer=adadelta (validation 9.8259).
source "$(dirname "$0")/common.sh"
run_row mushrooms_masks --dataset mushrooms --hidden 500 --init orthogonal --optimizer adadelta --rho 0.95 --eps 1e-5 --direct --masks 32 "$@"
