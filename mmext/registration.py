"""Import every OpenMMLab-facing mmext module so that its ``@register_module`` runs.

Kept separate from ``mmext/__init__.py`` so that the torch-only parts (``mmext.ops``)
never import mmdet/mmseg/mmengine.
"""
from .utils.checkpoint import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

from . import datasets  # noqa: F401,E402
from . import distill  # noqa: F401,E402
from . import engine  # noqa: F401,E402
from . import evaluation  # noqa: F401,E402
from . import panoptic  # noqa: F401,E402
from . import seg  # noqa: F401,E402
