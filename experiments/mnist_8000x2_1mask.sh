#!/usr/bin/env bash
# Binarized MNIST, two hidden layers of 8000, one mask (paper table: 89.59).
# The authors' recipe: ReLU, orthogonal init, direct input-to-output, AdaGrad 0.01, batch 100, look-ahead 30.
# Fits a CPU: about 2.5 minutes an epoch on 2 cores (`python bench.py --hidden 8000,8000 --direct`,
# 2026-11-22: 142 s of training, 6 s of validation), so hours; start it in the background
# (RESUME=1 continues it). Pass --gpu for CUDA.
source "$(dirname "$0")/common.sh"
run_row mnist_8000x2_1mask --dataset binarized_mnist --hidden 8000,8000 --direct --init orthogonal --masks 1 "$@"
