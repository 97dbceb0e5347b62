#!/usr/bin/env bash
# adult, mask sampling (paper: 13.13).
# Chosen on the validation NLL by `python experiments/search.py adult_masks` from the first round's
# grid of the other UCI rows (AdaDelta, AdaGrad or Adam; a cycle of 32 masks or a fresh mask every
# minibatch; see results/search/adult_masks.json: every configuration's validation and test NLL).
# Chosen: direct=True-masks=32-optimizer=adadelta (validation 13.0414).
source "$(dirname "$0")/common.sh"
run_row adult_masks --dataset adult --hidden 500 --init orthogonal --optimizer adadelta --rho 0.95 --eps 1e-5 --direct --masks 32 "$@"
