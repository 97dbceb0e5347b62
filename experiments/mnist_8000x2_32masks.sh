#!/usr/bin/env bash
# Binarized MNIST, two hidden layers of 8000, 32 masks (paper table: 86.64). Needs a GPU.
# The authors' published MNIST command, as our flags.
source "$(dirname "$0")/common.sh"
run_row mnist_8000x2_32masks --dataset binarized_mnist --hidden 8000,8000 --direct --init orthogonal --masks 32 --gpu "$@"
