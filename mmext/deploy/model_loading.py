"""A model from a config and a checkpoint, as tools/test.py loads it, ready to export."""
import copy
import os.path as osp
import sys

import torch
from mmengine.config import Config
from torch import nn

from mmext.utils.errors import UserError

#: The CHECKPOINT value that exports the config's freshly initialised weights.
RANDOM_INIT = 'none'


def _student_config(cfg: Config) -> dict:
    """The model config to build: a FeatureDistiller's student, else ``cfg.model``."""
    model = cfg.model
    if str(model.get('type', '')).split('.')[-1] == 'FeatureDistiller':
        return model['student']
    return model


def load_model(cfg: Config, checkpoint: str, seed: int = 0) -> nn.Module:
    """Build ``cfg.model`` in its registry scope and load ``checkpoint``, eval mode.

    A FeatureDistiller config gives its student (what is deployed): the checkpoint
    is then a student checkpoint (tools/convert_distill_checkpoint.py's output, or
    mmext's own distillation checkpoint, whose adapter weights are ignored).
    ``checkpoint='none'`` keeps the seeded initial weights (tests, smoke runs).

    Raises:
        UserError: missing / unreadable checkpoint, or a distillation layout
            that must be converted first (the message names the converter).
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import mmext  # noqa: F401  (registers mmext's modules)
    from mmext.engine import check_checkpoint

    scope = cfg.get('default_scope', 'mmdet')
    if scope not in ('mmdet', 'mmseg'):
        raise UserError(f"default_scope '{scope}': only mmdet and mmseg models export "
                        '(set default_scope in the config)')
    init_default_scope(scope)
    model_cfg = _student_config(cfg)
    if checkpoint != RANDOM_INIT:
        if not osp.isfile(checkpoint):
            raise UserError(f"checkpoint '{checkpoint}' does not exist (give a .pth "
                            f"file, or '{RANDOM_INIT}' to export untrained weights)")
        check_checkpoint(checkpoint, model=model_cfg)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    if checkpoint == RANDOM_INIT:
        model_cfg = _without_pretrained(copy.deepcopy(model_cfg))
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    if checkpoint == RANDOM_INIT:
        _quiet_init_weights(model)
        print('mmext: note: CHECKPOINT is none: exporting untrained (seeded) weights',
              file=sys.stderr)
    else:
        load_checkpoint(model, checkpoint, map_location='cpu')
    return model.eval()


def _without_pretrained(cfg):
    """Drop ``pretrained=`` and ``init_cfg=dict(type='Pretrained', ...)`` everywhere:
    untrained weights must not try to download the backbone's."""
    if isinstance(cfg, dict):
        cfg.pop('pretrained', None)
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        for value in cfg.values():
            _without_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _without_pretrained(value)
    return cfg


def _quiet_init_weights(model: nn.Module) -> None:
    """``init_weights`` without mmengine's per-parameter INFO log."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
