#!/usr/bin/env bash
# adult, one mask (paper: 13.12).
# The authors' published command for Adult: one mask, one hidden layer of 500 tanh units, the direct
# input→output connection, orthogonal initialisation, plain SGD at 0.01 without decay, minibatches of
# 100, no epoch cap (100000 here) and a look-ahead of 30 (results/search/adult_1mask.json).
source "$(dirname "$0")/common.sh"
run_row adult_1mask --dataset adult --hidden 500 --activation tanh --init orthogonal --optimizer sgd --lr 0.01 --direct --masks 1 --epochs 100000 "$@"
