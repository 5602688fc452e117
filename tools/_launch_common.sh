# Sourced (not run) by tools/dist_{train,test}.sh and tools/slurm_{train,test}.sh:
# the argument check, the Python to use and the two launch command lines they share.
# Expects HERE (the tools/ folder) to be set by the sourcing script.

# require_args MIN USAGE "$@": exit 2 with "usage: <script> USAGE" if fewer than MIN.
require_args() {
    local min=$1 usage=$2
    shift 2
    if [ $# -lt "$min" ]; then echo "usage: $0 $usage" >&2; exit 2; fi
}

# The Python: $PYTHON if given, else the active venv's, else the clone's $VENV
# (.venv, or .venv-onedl under `make ... STACK=onedl`); the clone first on PYTHONPATH
# so that the launched tools import this checkout's mmext.
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python
    if [ -n "${VIRTUAL_ENV:-}" ]; then PYTHON="$VIRTUAL_ENV/bin/python"
    elif [ -x "$HERE/../${VENV:-.venv}/bin/python" ]; then PYTHON="$HERE/../${VENV:-.venv}/bin/python"
    fi
fi
export PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}"

# launch_torchrun NPROC TOOL ARGS...: tools/TOOL on NPROC processes per node with
# torchrun, as mmdet's dist_*.sh; multi-node from NNODES, NODE_RANK, MASTER_ADDR, PORT.
launch_torchrun() {
    local nproc=$1 tool=$2
    shift 2
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
    "$PYTHON" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nproc" \
        --master_port="${PORT:-29500}" \
        "$HERE/$tool" "$@"
}

# launch_srun PARTITION JOB_NAME TOOL ARGS...: tools/TOOL as GPUS srun tasks (one per
# GPU), as mmdet's slurm_*.sh; GPUS, GPUS_PER_NODE, CPUS_PER_TASK default to 8, 8, 5.
launch_srun() {
    local partition=$1 job_name=$2 tool=$3
    shift 3
    local gpus_per_node=${GPUS_PER_NODE:-8}
    set -x  # echo the srun command line, as mmdet's script does
    # SRUN_ARGS is split into words on purpose (several srun options in one variable).
    # shellcheck disable=SC2086
    srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"$gpus_per_node" \
        --ntasks="${GPUS:-8}" \
        --ntasks-per-node="$gpus_per_node" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        "$PYTHON" -u "$HERE/$tool" "$@"
}
