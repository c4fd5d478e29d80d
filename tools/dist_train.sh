#!/usr/bin/env bash
# Distributed training with torchrun (torch.distributed.run), one or several nodes.
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py args...]
# Multi-node: run on every node with NNODES, NODE_RANK (0..NNODES-1), MASTER_ADDR (node 0's
# address) and PORT set the same way, e.g.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 bash tools/dist_train.sh CONFIG 8
# Without a GPU the processes train on CPU with the gloo backend (GPUS = processes).
set -euo pipefail
usage() {
    echo "usage: [NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 PORT=29500] $0 CONFIG GPUS [train.py args...]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
CONFIG=$1
GPUS=$2
shift 2
[[ $GPUS =~ ^[1-9][0-9]*$ ]] || { echo "error: GPUS must be a positive integer, got '$GPUS'" >&2; usage; }
[ -f "$CONFIG" ] || { echo "error: config $CONFIG does not exist" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
exec bash "$HERE/_torchrun.sh" "$GPUS" "$HERE/train.py" "$CONFIG" --launcher pytorch "$@"
