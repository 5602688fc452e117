"""Shared fixtures of the LaU op tests (torch only, CPU and CUDA-if-available)."""
from __future__ import annotations

import os

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def lau_ext() -> bool:
    """Build/load the extension once; fail loudly unless the user disabled it."""
    from mmext.ops import _extension

    ok = _extension.load_extension()
    if not ok:
        if os.environ.get("MMEXT_LAU_DISABLE"):
            pytest.skip("MMEXT_LAU_DISABLE is set: compiled kernels not under test")
        pytest.fail(f"LaU extension failed to build/load: {_extension.extension_state().error}")
    return ok


@pytest.fixture(params=DEVICES)
def device(request, lau_ext) -> str:
    if request.param == "cuda":
        from mmext.ops import _extension

        assert _extension.has_kernel_for(torch.device("cuda")), (
            f"CUDA visible but the CUDA kernel was not built: {_extension.extension_state().error}"
        )
    return request.param
