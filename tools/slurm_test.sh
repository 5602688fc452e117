#!/usr/bin/env bash
# Testing on a Slurm cluster, as mmdet's tools/slurm_test.sh:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
# srun starts GPUS tasks (one per GPU) running tools/test.py --launcher slurm.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/_launch_common.sh
source "$HERE/_launch_common.sh"
require_args 4 "PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]" "$@"
PARTITION=$1 JOB_NAME=$2 CONFIG=$3 CHECKPOINT=$4
launch_srun "$PARTITION" "$JOB_NAME" test.py "$CONFIG" "$CHECKPOINT" --launcher=slurm "${@:5}"
