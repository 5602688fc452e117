"""Checks that run before a Runner is built, so bad input fails in a second with
a message naming the problem, instead of deep inside dataset or model construction."""
import os.path as osp
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config, ConfigDict

from .errors import UserError

# Keys of ``data_prefix`` / dataset configs that name files or folders on disk.
_PATH_KEYS = ('ann_file', )
_DATALOADERS = {
    'train': ('train_dataloader', 'val_dataloader'),
    'test': ('test_dataloader', ),
}


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` with a clear error for a missing or unparsable file."""
    if not osp.isfile(path):
        raise UserError(f"config file '{path}' does not exist (give a path to a "
                        "config .py file, e.g. configs/demo/retinanet_r18_demo.py)")
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _datasets(cfg: ConfigDict) -> Iterator[ConfigDict]:
    """Leaf dataset configs, unwrapping RepeatDataset / ConcatDataset wrappers."""
    if 'dataset' in cfg:
        yield from _datasets(cfg['dataset'])
    elif 'datasets' in cfg:
        for sub in cfg['datasets']:
            yield from _datasets(sub)
    else:
        yield cfg


def _generates_own_data(dataset_type: object) -> bool:
    """Demo datasets (``mmext.datasets``) create their files on first use."""
    if isinstance(dataset_type, str):
        for registry in _dataset_registries():
            cls = registry.get(dataset_type)
            if cls is not None:
                return bool(getattr(cls, 'generates_own_data', False))
        return False
    return bool(getattr(dataset_type, 'generates_own_data', False))


def _dataset_registries() -> list:
    from mmdet.registry import DATASETS as DET
    from mmseg.registry import DATASETS as SEG
    return [DET, SEG]


def _required_paths(dataset: ConfigDict) -> List[Tuple[str, str]]:
    """(what, path) pairs that must exist for ``dataset`` to load."""
    root = dataset.get('data_root') or ''
    paths = []
    if root:
        paths.append(('data_root', root))
    for key in _PATH_KEYS:
        if dataset.get(key):
            paths.append((key, osp.join(root, dataset[key])))
    prefix = dataset.get('data_prefix') or {}
    for key, value in prefix.items():
        if isinstance(value, str) and value:
            paths.append((f'data_prefix.{key}', osp.join(root, value)))
    return paths


def check_data_paths(cfg: Config, mode: str = 'train') -> None:
    """Raise :class:`UserError` if a dataset folder/file of ``cfg`` is missing.

    Args:
        cfg: a loaded config.
        mode: ``'train'`` checks the train and val dataloaders, ``'test'`` the test one.
    """
    hint = cfg.get('dataset_layout_hint')
    for loader_key in _DATALOADERS[mode]:
        loader = cfg.get(loader_key)
        if not loader or 'dataset' not in loader:
            continue
        if loader_key == 'val_dataloader' and not cfg.get('val_cfg'):
            continue
        for dataset in _datasets(loader['dataset']):
            if _generates_own_data(dataset.get('type')):
                continue
            for what, path in _required_paths(dataset):
                if not osp.exists(path):
                    message = (f"{loader_key}: {what} '{path}' not found "
                               f"(dataset {dataset.get('type')}). Download the "
                               'dataset there, or point the config at it with '
                               f'--cfg-options {loader_key}.dataset.data_root=<dir>')
                    if hint:
                        message += f'. Expected layout: {hint}'
                    raise UserError(message)


def check_checkpoint(path: Optional[str], what: str = 'checkpoint') -> None:
    """Raise :class:`UserError` if a local checkpoint path does not exist."""
    if path and '://' not in path and not osp.isfile(path):
        raise UserError(f"{what} '{path}' does not exist (check the path; "
                        'checkpoints are written to <work_dir>/iter_*.pth or '
                        'epoch_*.pth)')
