#!/usr/bin/env bash
# Shared by dist_train.sh / dist_test.sh: torchrun with the multi-node variables, after checking
# that this node (the master) can bind the rendezvous port.
#   bash tools/_torchrun.sh NPROC_PER_NODE SCRIPT [args...]
set -euo pipefail
NPROC=$1
shift
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
PYTHON=${PYTHON:-python}
if [ "$NODE_RANK" = "0" ]; then
    if ! "$PYTHON" - "$MASTER_ADDR" "$PORT" <<'PY'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    try:
        s.bind((addr if addr not in ('localhost',) else '127.0.0.1', port))
    except OSError as e:
        sys.exit(f'error: cannot use port {port} on {addr} for the rendezvous ({e.strerror}); '
                 'another job is probably using it: set PORT=<free port>')
PY
    then
        exit 1
    fi
fi
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd):${PYTHONPATH:-}"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$@"
