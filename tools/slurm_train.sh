#!/usr/bin/env bash
# Training on a Slurm cluster, as mmdet's tools/slurm_train.sh:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# srun starts GPUS tasks (one per GPU) running tools/train.py --launcher slurm;
# mmengine reads the rank and world size from SLURM_PROCID / SLURM_NTASKS and the
# master address from SLURM_NODELIST (PORT, default 29500, from the environment).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/_launch_common.sh
source "$HERE/_launch_common.sh"
require_args 4 "PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]" "$@"
PARTITION=$1 JOB_NAME=$2 CONFIG=$3 WORK_DIR=$4
launch_srun "$PARTITION" "$JOB_NAME" train.py "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "${@:5}"
