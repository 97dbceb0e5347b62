#!/usr/bin/env bash
# Binarized MNIST, two hidden layers of 8000, 32 masks (paper table: 86.64). Needs a GPU: on 2 CPU
# cores an epoch takes about 11 minutes (`python bench.py --hidden 8000,8000 --direct --masks 32`,
# 2026-11-22: 400 s of training over dense masked products of 77 M weights, 255 s of 32-mask
# validation), for hundreds of epochs. On an NVIDIA H100 through CuPy (float32, no TF32) an epoch
# took 3.9 s; results/mnist_8000x2_32masks holds 207 epochs, run in three sittings of one session
# (14 minutes) until its GPU time ran out. Its 0.6 GB checkpoint stayed on that machine, so this
# row starts afresh; on a machine that keeps runs/, `RESUME=1 bash THIS --epochs 1000` continues it.
# Writing its checkpoint and best model (0.9 GB) every epoch is a good part of those 3.9 s, and TF32
# products save a third of an epoch without changing the validation curve (BENCHMARKS.md,
# 2026-11-23: 2.7 s an epoch in the log, 3.1 s of wall clock with the checkpoints), so on a GPU run
# `CUPY_TF32=1 bash THIS --checkpoint-every 10`: about 480 epochs in 25 minutes.
# The authors' published MNIST command, as our flags.
source "$(dirname "$0")/common.sh"
run_row mnist_8000x2_32masks --dataset binarized_mnist --hidden 8000,8000 --direct --init orthogonal --masks 32 --gpu "$@"
