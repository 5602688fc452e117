"""SpatialFlow: one-stage panoptic segmentation (see configs/spatialflow/README.md)."""
from .fusion import SpatialFlowFusion, spatialflow_fusion
from .mask_branch import SpatialFlowMaskBranch
from .spatialflow import SpatialFlow
from .spatialflow_head import ModulatedDeformConvModule, SpatialFlowHead
from .stuff_head import SpatialFlowStuffHead
from .tta import SpatialFlowTTAModel, SpatialFlowView  # noqa: F401

__all__ = [
    'ModulatedDeformConvModule', 'SpatialFlow', 'SpatialFlowFusion',
    'SpatialFlowHead', 'SpatialFlowMaskBranch', 'SpatialFlowStuffHead',
    'spatialflow_fusion'
]
