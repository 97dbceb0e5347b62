#!/usr/bin/env bash
# Binarized MNIST, 784-500-784, 32 masks that share one (random) ordering and differ in their hidden
# units' connectivity (the paper's connectivity-agnostic training, section 4.2, without resampling the
# ordering), with the direct input→output connection and orthogonal initialisation; Adam at 1e-3.
# With the ordering fixed the direct connection's mask is the same under every mask. Early stopping on
# an 8-mask validation ensemble; 32-mask ensemble at test. Nothing searched.
source "$(dirname "$0")/common.sh"
run_row mnist_500_32masks_connectivity_direct_adam --dataset binarized_mnist --hidden 500 --masks 32 --shuffle connectivity --direct --init orthogonal --optimizer adam --lr 1e-3 --valid-masks 8 --test-masks 32 "$@"
