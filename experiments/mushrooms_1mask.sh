#!/usr/bin/env bash
# mushrooms, one mask (paper: 9.68).
# The MADE authors' published recipe for DNA, used for every UCI set: 500 ReLU units, orthogonal
# init, direct input-to-output connection, AdaDelta (rho 0.95, eps 1e-5), batch 100, look-ahead 30.
source "$(dirname "$0")/common.sh"
run_row mushrooms_1mask --dataset mushrooms --hidden 500 --direct --init orthogonal --optimizer adadelta --rho 0.95 --eps 1e-5 --masks 1 "$@"
