# Sourced by every row's script: run train.py into runs/ROW (git-ignored: models and checkpoints),
# then copy the small outputs (metrics, log, learning curve) into results/ROW.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}

# RESUME=1 continues runs/ROW from its checkpoint (a run longer than one sitting) instead of
# starting afresh.
run_row() {
    local row=$1
    shift
    if [ "${RESUME:-0}" = 1 ]; then
        "$PYTHON" train.py "$@" --out "runs/$row" --resume
    else
        "$PYTHON" train.py "$@" --out "runs/$row" --force
    fi
    mkdir -p "results/$row"
    cp "runs/$row/metrics.json" "runs/$row/train.log" "runs/$row/learning_curve.png" "results/$row/"
}
