#!/usr/bin/env bash
# mushrooms, one mask (paper: 9.68).
# Chosen on the validation NLL by `python experiments/search.py mushrooms_1mask` from its grid
# (see results/search/mushrooms_1mask.json: every configuration's validation and test NLL).
# Chosen: direct=True-hidden=500-optimizer=adadelta (validation 9.9598).
source "$(dirname "$0")/common.sh"
run_row mushrooms_1mask --dataset mushrooms --hidden 500 --init orthogonal --optimizer adadelta --rho 0.95 --eps 1e-5 --direct --masks 1 "$@"
