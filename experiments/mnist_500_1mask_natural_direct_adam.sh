#!/usr/bin/env bash
# Binarized MNIST, 784-500-784, one mask in the natural (raster) ordering, direct connection,
# orthogonal init, Adam 1e-3. Not a row of the paper's table: its ordering puts the top half of
# every digit first, so it completes bottom halves under the ordering it trained on
# (experiments/completions.py compares it with the order-agnostic models).
source "$(dirname "$0")/common.sh"
run_row mnist_500_1mask_natural_direct_adam --dataset binarized_mnist --hidden 500 --masks 1 --ordering natural --direct --init orthogonal --optimizer adam --lr 1e-3 "$@"
