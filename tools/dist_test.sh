#!/usr/bin/env bash
# Distributed testing with torchrun (torch.distributed.run), one or several nodes.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as for tools/dist_train.sh.
set -euo pipefail
usage() {
    echo "usage: [NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500] $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
}
[ $# -ge 3 ] || usage
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
[[ $GPUS =~ ^[1-9][0-9]*$ ]] || { echo "error: GPUS must be a positive integer, got '$GPUS'" >&2; usage; }
[ -f "$CONFIG" ] || { echo "error: config $CONFIG does not exist" >&2; exit 2; }
[ -f "$CHECKPOINT" ] || { echo "error: checkpoint $CHECKPOINT does not exist" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
exec bash "$HERE/_torchrun.sh" "$GPUS" "$HERE/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
