#!/usr/bin/env bash
# Distributed testing with torchrun, as mmdet's tools/dist_test.sh:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT from the environment.
# Without GPUs it runs GPUS CPU processes with the gloo backend.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/_launch_common.sh
source "$HERE/_launch_common.sh"
require_args 3 "CONFIG CHECKPOINT NUM_PROCESSES [test.py options]" "$@"
CONFIG=$1 CHECKPOINT=$2 GPUS=$3
launch_torchrun "$GPUS" test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
