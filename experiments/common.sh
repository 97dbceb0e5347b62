# Sourced by every row's script: run train.py into runs/ROW (git-ignored: models and checkpoints),
# then copy the small outputs (metrics, log, learning curve) into results/ROW.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}

run_row() {
    local row=$1
    shift
    "$PYTHON" train.py "$@" --out "runs/$row" --force
    mkdir -p "results/$row"
    cp "runs/$row/metrics.json" "runs/$row/train.log" "runs/$row/learning_curve.png" "results/$row/"
}
