#!/usr/bin/env bash
# dna, one mask (paper: 83.63).
# Chosen on the validation NLL by `python experiments/search.py dna_1mask` from its grid
# (see results/search/dna_1mask.json: every configuration's validation and test NLL).
# Chosen: direct=True-hidden=500-optimizer=adam4 (validation 84.5153).
source "$(dirname "$0")/common.sh"
run_row dna_1mask --dataset dna --hidden 500 --init orthogonal --optimizer adam --lr 1e-4 --direct --masks 1 "$@"
