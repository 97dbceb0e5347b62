#!/usr/bin/env bash
# dna, one mask (paper: 83.63).
# The MADE authors' published recipe for DNA, used for every UCI set: 500 ReLU units, orthogonal
# init, direct input-to-output connection, AdaDelta (rho 0.95, eps 1e-5), batch 100, look-ahead 30.
source "$(dirname "$0")/common.sh"
run_row dna_1mask --dataset dna --hidden 500 --direct --init orthogonal --optimizer adadelta --rho 0.95 --eps 1e-5 --masks 1 "$@"
