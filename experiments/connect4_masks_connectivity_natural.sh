#!/usr/bin/env bash
# connect4, a cycle of 32 connectivities of the data's own ordering (a variant of the mask-sampling
# row, not the paper's: the ordering is fixed, each cell's three one-hot bits together, and only the
# hidden units' degrees are resampled, the paper's connectivity-agnostic training). Found among the
# candidates for Connect4's best (`python experiments/search.py connect4_best`: the data's ordering
# won the one-mask row's second round), where it had the lowest validation NLL (11.6317).
# results/connect4_masks_connectivity_natural holds that search run itself: this command, which
# reproduces it bit for bit.
source "$(dirname "$0")/common.sh"
run_row connect4_masks_connectivity_natural --dataset connect4 --hidden 500 --init orthogonal --optimizer adam --lr 1e-3 --direct --masks 32 --ordering natural --shuffle connectivity --valid-masks 8 --test-masks 32 "$@"
