"""mmext/.mim/model-index.yml and the per-method metafiles (OpenMMLab schema).

The validator (``metafile_problems``) checks one parsed metafile against the configs
on disk and returns one line per problem; the tests run it on the real files (no
problem allowed) and on deliberately broken copies (the problem must be named).
Every listed config is also loaded with ``Config.fromfile`` (once) and its schedule
and loss weight compared with the metafile's Metadata, and mmengine's own
``mmext::`` lookup (``mmengine.hub.get_config``) must find the configs through the
index.
"""
import copy
import glob
import numbers
import os
import os.path as osp
from typing import Dict, List

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MIM = osp.join(ROOT, 'mmext', '.mim')
METHODS = ('pkd', 'spatialflow', 'lau')
NOT_TRAINED = 'not trained here'
COLLECTION_KEYS = ('Name', 'Metadata', 'Paper', 'README', 'Code')
MODEL_KEYS = ('Name', 'In Collection', 'Config', 'Metadata')


def load_yaml(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def metafile_paths() -> List[str]:
    """The metafiles model-index.yml imports, as absolute paths (via .mim)."""
    index = load_yaml(osp.join(MIM, 'model-index.yml'))
    return [osp.join(MIM, p) for p in index['Import']]


def method_configs() -> List[str]:
    """Every config under configs/{pkd,spatialflow,lau} (not _base_), repo-relative."""
    found = []
    for method in METHODS:
        found += sorted(glob.glob(osp.join(ROOT, 'configs', method, '*.py')))
    return [osp.relpath(p, ROOT) for p in found]


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def metafile_problems(meta: dict, root: str = ROOT) -> List[str]:
    """Problems of one parsed metafile; [] when it follows the schema and the
    conventions of the READMEs ("Model index" sections).

    Schema: ``Collections`` [{Name, Metadata, Paper{URL, Title}, README, Code{URL,
    Version}}], ``Models`` [{Name, In Collection, Config, Metadata, Results?,
    Weights?}]. Conventions: every Results entry has Task, Dataset and numeric
    Metrics; a model has either an official ``Weights`` URL or
    ``Metadata.Weights`` starting with "not trained here"; Config and README exist.
    """
    problems = []
    if not isinstance(meta, dict):
        return ['metafile: not a mapping']
    collections = meta.get('Collections') or []
    models = meta.get('Models') or []
    if not collections:
        problems.append('no Collections')
    if not models:
        problems.append('no Models')
    names = set()
    for col in collections:
        where = f"collection {col.get('Name')!r}"
        problems += [f'{where}: no {k}' for k in COLLECTION_KEYS if k not in col]
        paper, code = col.get('Paper') or {}, col.get('Code') or {}
        problems += [f'{where}: Paper has no {k}' for k in ('URL', 'Title') if not paper.get(k)]
        problems += [f'{where}: Code has no {k}' for k in ('URL', 'Version') if not code.get(k)]
        if col.get('README') and not osp.isfile(osp.join(root, col['README'])):
            problems.append(f"{where}: README {col['README']} not found")
        names.add(col.get('Name'))
    for model in models:
        where = f"model {model.get('Name')!r}"
        problems += [f'{where}: no {k}' for k in MODEL_KEYS if k not in model]
        if model.get('In Collection') not in names:
            problems.append(f"{where}: In Collection {model.get('In Collection')!r} is "
                            f'not a collection of this metafile ({sorted(map(str, names))})')
        config = model.get('Config')
        if config and not osp.isfile(osp.join(root, config)):
            problems.append(f'{where}: Config {config} not found')
        for i, result in enumerate(model.get('Results') or []):
            for key in ('Task', 'Dataset', 'Metrics'):
                if not result.get(key):
                    problems.append(f'{where}: Results[{i}] has no {key}')
            metrics = result.get('Metrics') or {}
            if not isinstance(metrics, dict):
                problems.append(f'{where}: Results[{i}].Metrics is not a mapping')
                continue
            for name, value in metrics.items():
                if not _is_number(value):
                    problems.append(f'{where}: Results[{i}].Metrics.{name} = {value!r} '
                                    'is not a number')
        weights = model.get('Weights')
        note = (model.get('Metadata') or {}).get('Weights')
        if weights is not None:
            if not str(weights).startswith('https://'):
                problems.append(f'{where}: Weights {weights!r} is not an https URL')
            if note is not None:
                problems.append(f'{where}: both Weights and Metadata.Weights')
        elif not (isinstance(note, str) and note.startswith(NOT_TRAINED)):
            problems.append(f'{where}: no Weights URL and Metadata.Weights is not '
                            f'"{NOT_TRAINED} ..." (got {note!r})')
    return problems


@pytest.fixture(scope='module')
def metafiles() -> Dict[str, dict]:
    return {p: load_yaml(p) for p in metafile_paths()}


def test_index_imports_one_metafile_per_method():
    index = load_yaml(osp.join(MIM, 'model-index.yml'))
    assert index['Import'] == [f'configs/{m}/metafile.yml' for m in METHODS]
    for path in metafile_paths():
        assert osp.isfile(path), path
        # .mim/configs is the symlink to the repo's configs: the same file.
        rel = osp.relpath(path, MIM)
        assert osp.samefile(path, osp.join(ROOT, rel))


def test_real_metafiles_have_no_problem(metafiles):
    for path, meta in metafiles.items():
        assert metafile_problems(meta) == [], path


def test_every_method_config_is_in_exactly_one_metafile(metafiles):
    listed: Dict[str, List[str]] = {}
    for path, meta in metafiles.items():
        for model in meta['Models']:
            listed.setdefault(model['Config'], []).append(path)
    configs = method_configs()
    assert len(configs) >= 21  # 8 PKD + 5 SpatialFlow + 8 LaU today
    missing = [c for c in configs if c not in listed]
    twice = {c: p for c, p in listed.items() if len(p) > 1}
    extra = [c for c in listed if c not in configs]
    assert (missing, twice, extra) == ([], {}, [])
    # and in the metafile of its own method
    for config, (path, ) in listed.items():
        assert config.split('/')[1] == osp.basename(osp.dirname(path)), config


def test_names_unique_across_metafiles(metafiles):
    names = [m['Name'] for meta in metafiles.values() for m in meta['Models']]
    collections = [c['Name'] for meta in metafiles.values() for c in meta['Collections']]
    assert len(names) == len(set(names))
    assert sorted(collections) == ['LaU', 'PKD', 'SpatialFlow']


def test_targets_are_the_published_numbers(metafiles):
    """A few targets, checked against configs/*/README.md tables (same sources)."""
    by_name = {m['Name']: m for meta in metafiles.values() for m in meta['Models']}

    def metric(name, key):
        return by_name[name]['Results'][0]['Metrics'][key]

    assert metric('pkd_retina_r50', 'box AP') == 41.5
    assert metric('pkd_fcos_r50', 'box AP') == 43.9
    assert metric('spatialflow_r101-dcn_fpn_ms-20e_coco', 'PQ') == 48.0
    assert metric('spatialflow_r50_fpn_cityscapes', 'PQ') == 62.5
    assert metric('encnet_r50-d8_lau-og_4xb4-25k_pascal-context-59-480x480', 'mIoU') == 50.27
    assert metric('deeplabv3plus_r50-d8_lau_4xb4-40k_voc12aug-512x512', 'mIoU') == 78.55
    # LaU: the authors published no weights; PKD's fcos_r50 row has none either.
    assert all('Weights' not in by_name[n] for n in by_name if n.startswith(('encnet', 'deeplab')))
    assert 'Weights' not in by_name['pkd_fcos_r50']
    # the host MMRazor's own README and metafile link today (90c7af1f)
    assert by_name['pkd_retina_r50']['Weights'].startswith(
        'https://download.openmmlab.com/mmrazor/v1/pkd/')


# ----------------------------------------------------------- the validator fails
def _real_pkd() -> dict:
    return load_yaml(osp.join(ROOT, 'configs/pkd/metafile.yml'))


@pytest.mark.parametrize('break_it, expected', [
    (lambda m: m['Models'][0].update(Config='configs/pkd/nope.py'),
     'Config configs/pkd/nope.py not found'),
    (lambda m: m['Models'][0].update({'In Collection': 'PDK'}),
     "In Collection 'PDK' is not a collection"),
    (lambda m: m['Models'][0]['Results'][0]['Metrics'].update({'box AP': 'n/a'}),
     "Metrics.box AP = 'n/a' is not a number"),
    (lambda m: m['Models'][0]['Results'][0].pop('Dataset'), 'Results[0] has no Dataset'),
    (lambda m: m['Models'][0]['Results'][0].pop('Task'), 'Results[0] has no Task'),
    (lambda m: m['Models'][0].pop('Weights'), 'no Weights URL'),
    (lambda m: m['Models'][1]['Metadata'].update(Weights='trained'),
     "Metadata.Weights is not \"not trained here ...\" (got 'trained')"),
    (lambda m: m['Models'][0].update(Weights='ftp://x'), 'is not an https URL'),
    (lambda m: m['Collections'][0]['Paper'].pop('Title'), 'Paper has no Title'),
    (lambda m: m['Collections'][0].update(README='configs/pkd/NOPE.md'), 'not found'),
    (lambda m: m['Models'][0].pop('Metadata'), 'no Metadata'),
])
def test_validator_names_the_broken_entry(break_it, expected):
    meta = copy.deepcopy(_real_pkd())
    assert metafile_problems(meta) == []
    break_it(meta)
    problems = metafile_problems(meta)
    assert len(problems) >= 1 and any(expected in p for p in problems), problems


def test_validator_on_non_mapping_and_empty():
    assert metafile_problems([]) == ['metafile: not a mapping']
    assert metafile_problems({}) == ['no Collections', 'no Models']


# ------------------------------------------------- the configs behind the entries
def test_every_config_loads_and_matches_its_metadata(metafiles):
    import mmext  # noqa: F401  (the mmext:: scope; configs use mmdet::/mmseg:: bases)
    from mmengine.config import Config
    from mmengine.hub import get_config

    for meta in metafiles.values():
        for model in meta['Models']:
            cfg = Config.fromfile(osp.join(ROOT, model['Config']))
            md = model['Metadata']
            where = model['Name']
            train_cfg = cfg.get('train_cfg') or {}
            if 'Epochs' in md:
                assert train_cfg.get('max_epochs') == md['Epochs'], where
            if 'Iterations' in md:
                assert train_cfg.get('max_iters') == md['Iterations'], where
            if 'Loss Weight' in md:
                assert cfg.model.distill.loss.loss_weight == md['Loss Weight'], where
            if 'Student' in md:  # PKD: the student detector is the student config's
                student = get_config(md['Student']['Config'])
                assert cfg.model.student.type == student.model.type, where
                assert cfg.model.student.backbone.depth == student.model.backbone.depth


def test_mmengine_finds_the_configs_through_the_index():
    """mmengine's hub resolves 'mmext::<method>/<config>.py' via model-index.yml
    (the metafile's Config under .mim) and hands out the Weights URL."""
    import mmext  # noqa: F401
    from mmengine.hub import get_config

    # pretrained=True: only a config found through a metafile has cfg.model_path.
    cfg = get_config('mmext::pkd/retina_x101_r50.py', pretrained=True)
    assert cfg.model.type == 'FeatureDistiller'
    assert 'pkd_fpn_retina_x101_retina_r50_2x_coco' in cfg.model_path
    cfg = get_config('mmext::lau/encnet_r50-d8_lau-og_4xb4-25k_pascal-context-59-480x480.py')
    assert cfg.model.decode_head.type == 'LaUHead'
    # A config outside the index (demo) still resolves by path.
    cfg = get_config('mmext::demo/retinanet_r18_demo.py')
    assert cfg.model.type == 'RetinaNet'
    assert os.path.isdir(osp.join(MIM, 'configs'))
