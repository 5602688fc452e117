"""Distributed launch that also works on CPU-only machines (gloo backend).

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its runner wraps models
with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. When no GPU is visible we
initialise the process group with gloo ourselves (mmengine then skips its own
``init_dist``) and switch the wrapper to :class:`CPUDistributedDataParallel`.
:func:`finish_distributed` tears the group down at the end of a run (mmengine
never does).
"""
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Record ``launcher`` in ``cfg`` and prepare CPU distributed runs in place."""
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f"launcher '{launcher}' needs CUDA; on CPU use "
                           'tools/dist_train.sh (torchrun, --launcher pytorch)')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    dist_cfg['backend'] = 'gloo'  # nccl needs GPUs
    env_cfg['dist_cfg'] = dist_cfg
    if not dist.is_initialized():
        timeout = dist_cfg.get('timeout', 1800)
        dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            timeout=timedelta(seconds=timeout))
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper['type'] = 'CPUDistributedDataParallel'
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def finish_distributed() -> None:
    """End a distributed run cleanly: wait for every rank, then destroy the process
    group. No-op outside a distributed run.

    Neither mmengine's Runner nor its ``init_dist`` destroys the group. Left to the
    interpreter's exit, a rank that finishes first tears down its gloo/NCCL threads
    while a peer may still be talking to it: the C++ side then aborts with
    "terminate called without an active exception" (SIGABRT) after a run that
    succeeded, and torchrun reports the whole job as failed (pytorch/pytorch#190489;
    Gloo work objects freed during interpreter finalisation, pytorch/pytorch#179291).
    Called after a successful run only: after an exception the peers may be stuck in
    a collective and the barrier would hang (pytorch/torchtitan#1342).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
