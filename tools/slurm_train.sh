#!/usr/bin/env bash
# Training on a SLURM cluster with srun (one task per GPU, mmengine's slurm launcher).
#   [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] bash tools/slurm_train.sh \
#       PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py args...]
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2
    exit 2
fi
[ -f "$3" ] || { echo "error: config $3 does not exist" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
exec bash "$HERE/_srun.sh" "$1" "$2" "$HERE/train.py" "$3" --work-dir="$4" "${@:5}"
