#!/usr/bin/env bash
# dna, one mask (paper: 83.63).
# Chosen on the validation NLL by `python experiments/search.py dna_1mask` from its grid, widened in
# later rounds with two hidden layers (worse: they overfit 1400 examples), one wider layer (better
# at each width up to 8000), and last the ordering: five seeds of the best configuration (see
# results/search/dna_1mask.json: every configuration's validation and test NLL).
# Chosen: direct=True-hidden=8000-optimizer=adam4-seed=3 (validation 83.8555).
source "$(dirname "$0")/common.sh"
run_row dna_1mask --dataset dna --hidden 8000 --init orthogonal --optimizer adam --lr 1e-4 --direct --masks 1 --seed 3 "$@"
