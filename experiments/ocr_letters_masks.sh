#!/usr/bin/env bash
# ocr_letters, mask sampling (paper: 30.04).
# Chosen on the validation NLL by `python experiments/search.py ocr_letters_masks` from the first
# round's optimizers (AdaDelta, AdaGrad or Adam) with a cycle of 32 masks (500 units: 32.01 at best on
# test), widened in a second round with a wider layer (1000) and two layers (500-500), as Connect4's
# was (see results/search/ocr_letters_masks.json: every configuration's validation and test NLL).
# An 8-mask validation ensemble and a 32-mask test ensemble: 10 000 validation examples a CPU epoch.
# Chosen: direct=True-hidden=1000-masks=32-optimizer=adam3 (validation 30.5616).
# results/ocr_letters_masks holds that search run itself (interrupted at epoch 348 and resumed with
# --resume, which continues a run exactly): this command, which reproduces it bit for bit.
source "$(dirname "$0")/common.sh"
run_row ocr_letters_masks --dataset ocr_letters --hidden 1000 --init orthogonal --optimizer adam --lr 1e-3 --direct --masks 32 --valid-masks 8 --test-masks 32 "$@"
