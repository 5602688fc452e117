"""mmext: PKD distillation, SpatialFlow and Location-aware Upsampling for OpenMMLab 2.x.

``import mmext`` (or ``custom_imports = dict(imports=['mmext'], ...)`` in a config)
registers every mmext module into mmdet's / mmseg's registries.

The LaU operator (:mod:`mmext.ops`) needs torch alone, so that it builds and runs on
machines without the OpenMMLab stack. On such machines the registration step is
skipped: only when mmengine, mmdet and mmseg are all importable does ``import mmext``
register the OpenMMLab modules (an import error there propagates, it is not hidden).
"""
from importlib.util import find_spec

__version__ = '0.1.0'

_OPENMMLAB = ('mmengine', 'mmcv', 'mmdet', 'mmseg')
HAS_OPENMMLAB: bool = all(find_spec(name) is not None for name in _OPENMMLAB)

if HAS_OPENMMLAB:
    from .config_scope import install_hook
    install_hook()  # 'mmext::' configs, also where the .pth hook is absent
    from . import registration  # noqa: F401,E402  (side effect: registers modules)

__all__ = ['__version__', 'HAS_OPENMMLAB']
