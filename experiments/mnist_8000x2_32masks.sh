#!/usr/bin/env bash
# Binarized MNIST, two hidden layers of 8000, 32 masks (paper table: 86.64). Needs a GPU: on 2 CPU
# cores an epoch takes about 11 minutes (`python bench.py --hidden 8000,8000 --direct --masks 32`,
# 2026-11-22: 400 s of training over dense masked products of 77 M weights, 255 s of 32-mask
# validation), for hundreds of epochs.
# The authors' published MNIST command, as our flags.
source "$(dirname "$0")/common.sh"
run_row mnist_8000x2_32masks --dataset binarized_mnist --hidden 8000,8000 --direct --init orthogonal --masks 32 --gpu "$@"
