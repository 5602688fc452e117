"""mmext.ops: custom operators. Imports torch only (no mmcv/mmdet/mmengine).

The compiled LaU extension is built lazily on first use (see
:mod:`mmext.ops._extension`); ``python -m mmext.ops.build`` builds it ahead.
"""
from ._extension import extension_state, load_extension
from .lau import LocationAwareUpsample, check_lau_inputs, location_aware_upsample
from .lau_reference import location_aware_upsample_reference

__all__ = [
    "LocationAwareUpsample",
    "check_lau_inputs",
    "extension_state",
    "load_extension",
    "location_aware_upsample",
    "location_aware_upsample_reference",
]
