#!/usr/bin/env bash
# Binarized MNIST, 784-500-784, a fresh mask (ordering and connectivity) every minibatch, Adam 1e-3.
# Not a row of the paper's table: the order-agnostic model that completion of partly observed
# digits needs (a new ordering with the observed pixels first is then within what it learned).
# Early stopping on a 4-mask validation ensemble; a 32-mask test ensemble, to fit a CPU budget.
source "$(dirname "$0")/common.sh"
run_row mnist_500_infinite_masks_adam --dataset binarized_mnist --hidden 500 --masks 0 --optimizer adam --lr 1e-3 --valid-masks 4 --test-masks 32 "$@"
