#!/usr/bin/env bash
# Binarized MNIST, 784-500-784, one mask, with the direct input→output connection and orthogonal
# initialisation, Adam at 1e-3: the 1-mask twin of mnist_500_32masks_direct_adam.sh, so the two differ
# only in the masks. Nothing searched.
source "$(dirname "$0")/common.sh"
run_row mnist_500_1mask_direct_adam --dataset binarized_mnist --hidden 500 --masks 1 --direct --init orthogonal --optimizer adam --lr 1e-3 "$@"
