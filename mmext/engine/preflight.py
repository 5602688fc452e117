"""Checks that run before a Runner is built, so bad input fails in a second with
a message naming the problem, instead of deep inside dataset or model construction."""
import json
import os
import os.path as osp
from typing import Collection, Iterator, List, Optional, Tuple

from mmengine.config import Config, ConfigDict

from ..distill.state_dict_keys import CONVERTER, distillation_layout
from ..utils.checkpoint import load_checkpoint_file
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


def _user_datasets(cfg: Config, mode: str) -> Iterator[Tuple[str, ConfigDict]]:
    """(dataloader key, leaf dataset config) of the datasets ``mode`` reads from
    disk (demo datasets that write their own files are left out)."""
    for loader_key in _DATALOADERS[mode]:
        loader = cfg.get(loader_key)
        if not loader or 'dataset' not in loader:
            continue
        if loader_key == 'val_dataloader' and not cfg.get('val_cfg'):
            continue
        for dataset in _datasets(loader['dataset']):
            if not _generates_own_data(dataset.get('type')):
                yield loader_key, dataset


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
    for loader_key, dataset in _user_datasets(cfg, mode):
        for what, path in _required_paths(dataset):
            if not osp.exists(path):
                message = (f"{loader_key}: {what} '{path}' not found "
                           f"(dataset {dataset.get('type')}). Download the "
                           'dataset there, or point the config at it with '
                           f'--cfg-options {loader_key}.dataset.data_root=<dir>')
                if hint:
                    message += f'. Expected layout: {hint}'
                raise UserError(message)


def _is_distiller(model: object) -> bool:
    """Whether a model config is a FeatureDistiller (possibly inside a TTA wrapper)."""
    while isinstance(model, dict):
        if str(model.get('type', '')).split('.')[-1] == 'FeatureDistiller':
            return True
        model = model.get('module')
    return False


def check_checkpoint(path: Optional[str], what: str = 'checkpoint',
                     model: Optional[dict] = None) -> None:
    """Raise :class:`UserError` if a local checkpoint is missing or cannot be loaded,
    or (``model`` given) is a distillation checkpoint for a model that is not one.

    The file is loaded as the Runner will load it (``torch.load(weights_only=True)``
    with mmext's safe globals), tensors memory-mapped so that a large checkpoint is
    not read twice: empty, truncated, non-checkpoint files and pickles that ask for
    disallowed objects (which are refused, never run) fail here in one line.
    A distillation checkpoint whose student keys carry a prefix (MMRazor's
    ``architecture.`` / ``teacher.`` layout, or a FeatureDistiller's raw module
    names) would leave a plain model unloaded (mmengine only warns): refused with
    the converter's name. mmext's own checkpoints hold the student's names and load
    whole (adapter weights, if any, are reported as unexpected and unused).
    URLs are left to mmengine's loader.
    """
    if not path or '://' in path:
        return
    checkpoint = load_checkpoint_file(path, what, mmap=True)
    if model is None or _is_distiller(model):
        return
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) \
        else None
    layout = distillation_layout(state) if isinstance(state, dict) else None
    if layout in ('mmrazor', 'modules'):
        source = ("MMRazor's distillation layout (architecture./teacher. keys)"
                  if layout == 'mmrazor' else
                  "a FeatureDistiller's module names (student./adapters. keys)")
        raise UserError(
            f"{what} '{path}' is {source}, not a plain "
            f"{model.get('type', 'model')} checkpoint: convert it first with "
            f'python {CONVERTER} {path} student.pth, then use student.pth')


def check_model_checkpoints(cfg: Config, mode: str = 'train') -> None:
    """:func:`check_checkpoint` on checkpoints that building ``cfg.model`` loads:
    the PKD teacher's (``model.teacher.checkpoint``). A missing teacher file is left
    to :func:`mmext.distill.teacher.check_checkpoint_path`, whose message says where
    to get it. For training, also a local ``Pretrained`` backbone file
    (``model.backbone.init_cfg``, e.g. the LaU configs' converted ImageNet weights),
    which mmengine would only miss at the first weight initialisation."""
    model = cfg.get('model')
    teacher = model.get('teacher') if isinstance(model, dict) else None
    path = teacher.get('checkpoint') if isinstance(teacher, dict) else None
    if isinstance(path, str) and osp.isfile(path):
        check_checkpoint(path, 'teacher checkpoint (model.teacher.checkpoint)')
    backbone = model.get('backbone') if isinstance(model, dict) else None
    init = backbone.get('init_cfg') if isinstance(backbone, dict) else None
    path = init.get('checkpoint') if isinstance(init, dict) and \
        init.get('type') == 'Pretrained' else None
    if mode == 'train' and isinstance(path, str) and '://' not in path:
        if not osp.isfile(path):
            raise UserError(
                f"model.backbone.init_cfg: pretrained weights '{path}' not found: "
                'make them as the config says (its comment names the download and '
                'the converter), or train from scratch with --cfg-options '
                'model.backbone.init_cfg=None')
        check_checkpoint(path, 'pretrained backbone (model.backbone.init_cfg)')


def _launch_rank() -> int:
    """This process's global rank as the launcher set it (before any process group
    exists): torchrun's RANK, Slurm's SLURM_PROCID, Open MPI's OMPI_COMM_WORLD_RANK."""
    for key in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if os.environ.get(key, '').isdigit():
            return int(os.environ[key])
    return 0


def _dataset_class(dataset_type: object) -> Optional[type]:
    if isinstance(dataset_type, type):
        return dataset_type
    if isinstance(dataset_type, str):
        for registry in _dataset_registries():
            cls = registry.get(dataset_type)
            if cls is not None:
                return cls
    return None


def _coco_paths(cls: Optional[type]) -> Tuple[bool, bool]:
    """(images at data_prefix.img + file_name, panoptic PNGs at data_prefix.seg +
    file_name .jpg->.png): true where ``cls`` keeps mmdet's ``parse_data_info``, the
    code that builds those paths. A subclass that overrides it (e.g. Cityscapes
    panoptic, whose images live in per-city folders) resolves paths its own way."""
    if cls is None:
        return False, False
    from mmdet.datasets import CocoDataset, CocoPanopticDataset
    panoptic = (issubclass(cls, CocoPanopticDataset)
                and cls.parse_data_info is CocoPanopticDataset.parse_data_info)
    detection = (issubclass(cls, CocoDataset) and not issubclass(cls, CocoPanopticDataset)
                 and cls.parse_data_info is CocoDataset.parse_data_info)
    return detection or panoptic, panoptic


def _read_json(path: str, where: str) -> object:
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: annotation file '{path}' is not valid JSON ({exc.msg} "
                        f'at line {exc.lineno} column {exc.colno}): it is corrupt or '
                        'truncated; regenerate it or download it again') from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{where}: annotation file '{path}' is not UTF-8 text "
                        f'(byte {exc.start}): is it a JSON annotation file?') from exc


def _bad_box(bbox: object) -> Optional[str]:
    """Why a COCO ``[x, y, w, h]`` box is unusable, or None.

    Zero width/height is not refused: mmdet skips such boxes, and the official
    COCO train2017 holds two (annotation ids 918 and 2206849, height 0).
    """
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
        return f'bbox {bbox!r} is not [x, y, width, height]'
    if bbox[2] < 0 or bbox[3] < 0:
        return (f'bbox {list(bbox)} has a negative width or height '
                '(COCO boxes are [x, y, width, height], not [x1, y1, x2, y2])')
    return None


def _check_box_and_category(item: dict, where: str, category_ids: Collection) -> None:
    """Raise UserError if a detection annotation or panoptic segment ``item`` has an
    unusable bbox or (when ``category_ids`` is not empty) an unknown category_id;
    ``where`` names it ('<file>: annotation id 3 (image id 1)')."""
    reason = _bad_box(item.get('bbox'))
    if reason:
        raise UserError(f'{where}: {reason}')
    if category_ids and item.get('category_id') not in category_ids:
        raise UserError(f"{where}: category_id {item.get('category_id')} "
                        'is not in categories')


def _missing_files(entries: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    return [(entry, path) for entry, path in entries if not osp.isfile(path)]


def check_coco_annotations(path: str, where: str = 'dataset',
                           img_dir: Optional[str] = None,
                           seg_dir: Optional[str] = None) -> None:
    """Raise :class:`UserError` naming ``path`` and the entry at fault if a COCO
    (detection or panoptic) annotation file is unusable.

    Checks: the file is JSON; every image has ``id`` and ``file_name``; every
    ``[x, y, w, h]`` box (of an annotation, or of a panoptic segment) has four
    numbers and no negative size; category ids are declared in ``categories``; with
    ``img_dir`` every image file exists (``img_dir/file_name``), with ``seg_dir``
    every panoptic PNG (``seg_dir/file_name`` with .jpg -> .png, as mmdet reads it).
    Files that are JSON but not COCO (no ``images``/``annotations`` lists) pass:
    their dataset class parses them.

    Args:
        path: the annotation file.
        where: the dataloader that reads it, for the message.
        img_dir: folder of the images (``data_root`` + ``data_prefix.img``).
        seg_dir: folder of the panoptic PNGs (``data_root`` + ``data_prefix.seg``).
    """
    data = _read_json(path, where)
    if not (isinstance(data, dict) and isinstance(data.get('images'), list)
            and isinstance(data.get('annotations'), list)):
        return
    at = f"{where}: annotation file '{path}'"
    category_ids = {c.get('id') for c in data.get('categories') or []
                    if isinstance(c, dict)}

    image_files = []
    for index, image in enumerate(data['images']):
        missing = [k for k in ('id', 'file_name') if not isinstance(image, dict)
                   or k not in image]
        if missing:
            raise UserError(f"{at}: images[{index}] has no {' or '.join(missing)}")
        if img_dir is not None:
            image_files.append((f"image id {image['id']} ('{image['file_name']}')",
                                osp.join(img_dir, image['file_name'])))
    if seg_dir is not None:
        image_names = {image['id']: image['file_name'] for image in data['images']}

    for index, ann in enumerate(data['annotations']):
        if not isinstance(ann, dict):
            raise UserError(f'{at}: annotations[{index}] is not an object')
        segments = ann.get('segments_info')
        if isinstance(segments, list):  # panoptic: one entry per image
            entry = f"annotation of image id {ann.get('image_id')}"
            for segment in segments:
                if not isinstance(segment, dict):
                    raise UserError(f'{at}: {entry}: a segments_info entry is not '
                                    'an object')
                _check_box_and_category(
                    segment, f"{at}: {entry}, segment id {segment.get('id')}",
                    category_ids)
            continue
        _check_box_and_category(
            ann, f"{at}: annotation id {ann.get('id')} (image id {ann.get('image_id')})",
            category_ids)

    checks = image_files
    if seg_dir is not None:
        checks = checks + [
            (f"panoptic PNG of image id {image_id}",
             osp.join(seg_dir, file_name.replace('.jpg', '.png')))
            for image_id, file_name in image_names.items()]
    missing = _missing_files(checks)
    if missing:
        entry, file = missing[0]
        more = f' (and {len(missing) - 1} more files missing)' if len(missing) > 1 else ''
        raise UserError(f"{at}: {entry}: '{file}' does not exist{more}. Put the file "
                        'there, or remove the entry from the annotation file')


def check_annotation_files(cfg: Config, mode: str = 'train') -> None:
    """:func:`check_coco_annotations` on every JSON ``ann_file`` that ``mode``
    reads, so that a corrupt annotation file fails before training/testing starts
    instead of deep in dataset construction or a dataloader worker.

    Runs on the launcher's rank 0 only: a COCO train file takes seconds to parse
    and every rank would parse the same file; a bad file still stops the job
    (torchrun and srun end the other ranks when one exits with an error).
    """
    if _launch_rank() != 0:
        return
    for loader_key, dataset in _user_datasets(cfg, mode):
        ann_file = dataset.get('ann_file')
        root = dataset.get('data_root') or ''
        if not isinstance(ann_file, str) or not ann_file.endswith('.json'):
            continue
        path = osp.join(root, ann_file)
        if '://' in path or not osp.isfile(path):
            continue  # remote (file backends) or missing (check_data_paths says so)
        coco_paths, panoptic = _coco_paths(_dataset_class(dataset.get('type')))
        # Image paths are checked on local disk only (backend_args means a remote
        # file backend such as petrel).
        local = coco_paths and dataset.get('backend_args') is None and '://' not in root
        prefix = dataset.get('data_prefix') or {}
        img_dir = osp.join(root, prefix['img']) if local and prefix.get('img') else None
        seg_dir = (osp.join(root, prefix['seg'])
                   if local and panoptic and prefix.get('seg') else None)
        check_coco_annotations(path, loader_key, img_dir, seg_dir)
