#!/usr/bin/env bash
# nips, one mask (paper: 280.25).
# The MADE authors' published recipe for DNA, used for every UCI set: 500 ReLU units, orthogonal
# init, direct input-to-output connection, AdaDelta (rho 0.95, eps 1e-5), batch 100, look-ahead 30.
source "$(dirname "$0")/common.sh"
run_row nips_1mask --dataset nips --hidden 500 --direct --init orthogonal --optimizer adadelta --rho 0.95 --eps 1e-5 --masks 1 "$@"
