"""SpatialFlow: one-stage panoptic segmentation (see configs/spatialflow/README.md)."""
from .fusion import spatialflow_fusion
from .mask_branch import SpatialFlowMaskBranch
from .spatialflow import SpatialFlow
from .spatialflow_head import FlowGuidedDeformConv, SpatialFlowHead
from .stuff_head import SpatialFlowStuffHead

__all__ = [
    'FlowGuidedDeformConv', 'SpatialFlow', 'SpatialFlowHead',
    'SpatialFlowMaskBranch', 'SpatialFlowStuffHead', 'spatialflow_fusion'
]
