#!/usr/bin/env bash
# mushrooms, one mask (paper: 9.68).
# Chosen on the validation NLL by `python experiments/search.py mushrooms_1mask` from its grid, widened
# in later rounds with two hidden layers, wider single layers, AdaDelta's ε from 1e-4 to 1e-8, and
# last the ordering: five seeds of the best configuration (see results/search/mushrooms_1mask.json:
# every configuration's validation and test NLL).
# Chosen: direct=True-hidden=1000-optimizer=adadelta8-seed=3 (validation 9.6035).
source "$(dirname "$0")/common.sh"
run_row mushrooms_1mask --dataset mushrooms --hidden 1000 --init orthogonal --optimizer adadelta --rho 0.95 --eps 1e-8 --direct --masks 1 --seed 3 "$@"
