#!/usr/bin/env bash
# Binarized MNIST, 784-500-784, one mask (paper, figure on the number of masks: about 94.5).
# The paper's protocol, which train.py's defaults are: AdaGrad lr 0.01, batch 100, ReLU, Glorot-uniform
# init, random ordering, look-ahead 30 on the validation NLL. Nothing searched.
source "$(dirname "$0")/common.sh"
run_row mnist_500_1mask --dataset binarized_mnist --hidden 500 --masks 1 "$@"
