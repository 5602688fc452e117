"""DistributedDataParallel wrapper that also works for CPU modules (gloo backend)."""
from typing import Any, List, Optional

import torch.nn as nn
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that drops ``device_ids`` for CPU modules.

    mmengine's runner always passes ``device_ids=[LOCAL_RANK]``, which torch's DDP
    rejects for a module whose parameters live on the CPU. Everything else (the
    ``train_step``/``val_step`` logic) is mmengine's.
    """

    def __init__(self,
                 module: nn.Module,
                 device_ids: Optional[List[int]] = None,
                 **kwargs: Any) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(
            module=module, device_ids=None if on_cpu else device_ids, **kwargs)
