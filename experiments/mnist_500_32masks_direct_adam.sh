#!/usr/bin/env bash
# Binarized MNIST, 784-500-784, 32 masks (ordering and connectivity), with the two parts of the
# authors' published MNIST mask-sampling recipe that fit a CPU: the direct input→output connection
# and orthogonal initialisation (their recipe also has 8000 units a layer, see mnist_8000_32masks.sh).
# Adam at 1e-3; early stopping on an 8-mask validation ensemble; 32-mask ensemble at test.
source "$(dirname "$0")/common.sh"
run_row mnist_500_32masks_direct_adam --dataset binarized_mnist --hidden 500 --masks 32 --direct --init orthogonal --optimizer adam --lr 1e-3 --valid-masks 8 --test-masks 32 "$@"
