#!/usr/bin/env bash
# Binarized MNIST, one hidden layer of 8000, one mask (paper table: 88.40). Runs on the CPU
# (hours: start it in the background; RESUME=1 continues it in a later sitting).
# The authors' published recipe: ReLU, orthogonal init, direct input-to-output connection,
# AdaGrad 0.01, batch 100, look-ahead 30.
source "$(dirname "$0")/common.sh"
run_row mnist_8000_1mask --dataset binarized_mnist --hidden 8000 --direct --init orthogonal --masks 1 "$@"
