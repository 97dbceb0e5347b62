#!/usr/bin/env bash
# dna, mask sampling (paper: 79.66).
# The authors' DNA recipe with a fresh mask (ordering and connectivity) before every minibatch, as
# their command does; early stopping on a 32-mask validation ensemble (theirs used 300), test on
# 1000 masks as they did.
source "$(dirname "$0")/common.sh"
run_row dna_masks --dataset dna --hidden 500 --direct --init orthogonal --optimizer adadelta --rho 0.95 --eps 1e-5 --masks 0 --valid-masks 32 --test-masks 1000 "$@"
