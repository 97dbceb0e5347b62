#!/usr/bin/env bash
# connect4, mask sampling (paper: 11.90).
# Chosen on the validation NLL by `python experiments/search.py connect4_masks` from the first
# round's grid of the other UCI rows (AdaDelta, AdaGrad or Adam; a cycle of 32 masks or a fresh mask
# every minibatch), widened in a second round with a wider layer (1000) and two layers (500-500), as
# Mushrooms' was, and in a third with two layers of 1000 (see results/search/connect4_masks.json:
# every configuration's validation and test NLL). An 8-mask validation ensemble and a 32-mask test
# ensemble: 4000 validation examples a CPU epoch. Chosen: direct=True-hidden=1000,1000-masks=32-optimizer=adam3
# (validation 11.9324). results/connect4_masks holds that search run itself (two BLAS threads, the
# machine to itself: 17 minutes): this command, which reproduces it bit for bit.
source "$(dirname "$0")/common.sh"
run_row connect4_masks --dataset connect4 --hidden 1000,1000 --init orthogonal --optimizer adam --lr 1e-3 --direct --masks 32 --valid-masks 8 --test-masks 32 "$@"
