#!/usr/bin/env bash
# nips, one mask (paper: 280.25).
# Chosen on the validation NLL by `python experiments/search.py nips_1mask` from its grid
# (see results/search/nips_1mask.json: every configuration's validation and test NLL).
# Chosen: direct=False-hidden=500-optimizer=adagrad (validation 278.2013).
source "$(dirname "$0")/common.sh"
run_row nips_1mask --dataset nips --hidden 500 --init orthogonal --optimizer adagrad --lr 0.01 --masks 1 "$@"
