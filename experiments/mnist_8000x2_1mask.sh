#!/usr/bin/env bash
# Binarized MNIST, two hidden layers of 8000, one mask (paper table: 89.59). Needs a GPU.
# The authors' recipe: ReLU, orthogonal init, direct input-to-output, AdaGrad 0.01, batch 100, look-ahead 30.
source "$(dirname "$0")/common.sh"
run_row mnist_8000x2_1mask --dataset binarized_mnist --hidden 8000,8000 --direct --init orthogonal --masks 1 --gpu "$@"
