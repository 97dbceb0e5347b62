#!/usr/bin/env bash
# Binarized MNIST, one hidden layer of 8000, 32 masks (paper table: 88.04). Runs on the CPU
# (hours: start it in the background; RESUME=1 continues it in a later sitting).
# The authors' recipe as for one mask, with a cycle of 32 masks and a 32-mask ensemble.
source "$(dirname "$0")/common.sh"
run_row mnist_8000_32masks --dataset binarized_mnist --hidden 8000 --direct --init orthogonal --masks 32 "$@"
