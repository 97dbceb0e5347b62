#!/usr/bin/env bash
# Binarized MNIST, 784-500-784, 32 masks, 32-mask ensemble at test, trained with Adam (lr 1e-3).
# The AdaGrad run of this row (mnist_500_32masks.sh) needs many hundred epochs on a CPU; Adam
# converges several times faster. Early stopping on an 8-mask validation ensemble.
source "$(dirname "$0")/common.sh"
run_row mnist_500_32masks_adam --dataset binarized_mnist --hidden 500 --masks 32 --optimizer adam --lr 1e-3 --valid-masks 8 --test-masks 32 "$@"
