#!/usr/bin/env bash
# Distributed training with torchrun, as mmdet's tools/dist_train.sh:
#   tools/dist_train.sh CONFIG GPUS [train.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT from the environment.
# Without GPUs it runs GPUS CPU processes with the gloo backend.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/_launch_common.sh
source "$HERE/_launch_common.sh"
require_args 2 "CONFIG NUM_PROCESSES [train.py options]" "$@"
CONFIG=$1 GPUS=$2
launch_torchrun "$GPUS" train.py "$CONFIG" --launcher pytorch "${@:3}"
