#!/usr/bin/env bash
# Testing on a SLURM cluster with srun.
#   [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] bash tools/slurm_test.sh \
#       PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py args...]
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
    exit 2
fi
[ -f "$3" ] || { echo "error: config $3 does not exist" >&2; exit 2; }
[ -f "$4" ] || { echo "error: checkpoint $4 does not exist" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
exec bash "$HERE/_srun.sh" "$1" "$2" "$HERE/test.py" "$3" "$4" "${@:5}"
