#!/usr/bin/env bash
# Binarized MNIST, 784-500-784, 32 masks that share one (random) ordering and differ in their hidden
# units' connectivity: the paper's connectivity-agnostic training (its section 4.2) without the
# order-agnostic part. 32-mask ensemble at test. Adam at 1e-3, as the 1-mask Adam row; early stopping
# on an 8-mask validation ensemble. Nothing searched.
source "$(dirname "$0")/common.sh"
run_row mnist_500_32masks_connectivity_adam --dataset binarized_mnist --hidden 500 --masks 32 --shuffle connectivity --optimizer adam --lr 1e-3 --valid-masks 8 --test-masks 32 "$@"
