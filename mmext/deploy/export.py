"""``torch.onnx.export`` of an export wrapper, LaU translation included.

Both of torch's exporters:

* ``dynamo=True`` (torch's default): ``torch.export`` + onnxscript translations;
  the LaU op is translated by :func:`mmext.ops.onnx.lau_translation_table`.
* ``dynamo=False``: the TorchScript exporter; the LaU op is translated by the
  symbolic of :func:`mmext.ops.onnx.register_torchscript_symbolic`.

The graph has standard ONNX ops only (checked after export: every node's domain is
the default one).
"""
import logging
import os
import warnings
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from mmext.ops.onnx import MIN_OPSET
from mmext.utils.errors import UserError

#: Opset written when none is asked for (GridSample needs >= 16).
DEFAULT_OPSET = 18
_STANDARD_DOMAINS = ('', 'ai.onnx')


def check_input_shape(shape: Sequence[int], divisor: int, what: str = '--shape') -> None:
    """H and W must be positive multiples of ``divisor`` (the network stride)."""
    h, w = shape
    if h < 1 or w < 1 or h % divisor or w % divisor:
        def up(v: int) -> int:
            return max(divisor, -(-v // divisor) * divisor)
        raise UserError(f'{what} {h} {w}: height and width must be multiples of '
                        f'{divisor} (the network stride / padding divisor of this '
                        f'model), e.g. {up(h)} {up(w)}')


def _uses_lau_op(module: nn.Module, inputs: Tensor) -> bool:
    """Whether a forward of ``module`` calls the compiled ``mmext::lau_forward``."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Spy(TorchDispatchMode):
        seen = False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.namespace == 'mmext':
                Spy.seen = True
            return func(*args, **(kwargs or {}))

    with torch.no_grad(), Spy():
        module(inputs)
    return Spy.seen


def export_onnx(module: nn.Module,
                inputs: Tensor,
                path: str,
                output_names: List[str],
                opset: Optional[int] = None,
                dynamo: bool = True,
                dynamic: bool = False,
                size_divisor: int = 1) -> str:
    """Export ``module(inputs)`` to ``path``; return ``path``.

    Args:
        module: a tensor-only module (see :mod:`mmext.deploy.wrappers`).
        inputs: (N, 3, H, W) example input.
        output_names: one name per output.
        opset: ONNX opset (default :data:`DEFAULT_OPSET`; at least 16).
        dynamo: torch's dynamo exporter (True) or the TorchScript one (False).
        dynamic: batch, height and width dynamic (height and width multiples of
            ``size_divisor``); otherwise every shape is fixed to ``inputs``'.

    Raises:
        UserError: opset below 16, or a dynamic shape the model cannot take.
    """
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if opset < MIN_OPSET:
        raise UserError(f'--opset {opset}: the exported graph needs opset >= '
                        f'{MIN_OPSET} (GridSample, Shape ranges)')
    from mmext.ops.onnx import lau_translation_table, register_torchscript_symbolic

    uses_lau = _uses_lau_op(module, inputs)
    # torch's exporter logs a warning per torchvision op it cannot register
    logging.getLogger('torch.onnx._internal.exporter._registration').setLevel(logging.ERROR)
    module.eval()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer / deprecation chatter
        if dynamo:
            dynamic_shapes = None
            if dynamic:
                from torch.export import Dim
                unit_h = Dim('h_units', min=1, max=1024)
                unit_w = Dim('w_units', min=1, max=1024)
                dynamic_shapes = ({0: Dim('batch', min=1, max=256),
                                   2: size_divisor * unit_h,
                                   3: size_divisor * unit_w}, )
            table = lau_translation_table(opset) if uses_lau else None
            example = inputs
            if dynamic and inputs.shape[0] == 1:
                # torch.export fixes a dimension whose example size is 1
                example = inputs.repeat(2, 1, 1, 1)
            try:
                program = torch.onnx.export(
                    module, (example, ), None, dynamo=True, opset_version=opset,
                    input_names=['inputs'], output_names=output_names,
                    dynamic_shapes=dynamic_shapes, custom_translation_table=table,
                    verbose=False)
            except Exception as exc:  # noqa: BLE001
                if dynamic and _is_dynamic_shape_error(exc):
                    raise UserError(_dynamic_error(exc)) from exc
                raise
            program.save(path, external_data=False)
        else:
            if opset > 20:
                raise UserError(f'--opset {opset}: the TorchScript exporter '
                                '(--no-dynamo) writes opset 20 at most')
            if uses_lau:
                register_torchscript_symbolic()
            axes = None
            if dynamic:
                axes = {'inputs': {0: 'batch', 2: 'height', 3: 'width'}}
                axes.update({name: {0: 'batch'} for name in output_names})
            torch.onnx.export(module, (inputs, ), path, dynamo=False,
                              opset_version=opset, input_names=['inputs'],
                              output_names=output_names, dynamic_axes=axes)
            _drop_value_info(path)
    check_standard_domains(path)
    if dynamic:
        _check_dynamic_input(path)
    return path


def _check_dynamic_input(path: str) -> None:
    """With ``dynamic``, the exporter may still have fixed N, H or W (a model that
    reads them as Python numbers); refuse such a file rather than mislabel it."""
    import onnx
    dims = onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    fixed = [axis for axis, name in ((0, 'batch'), (2, 'height'), (3, 'width'))
             if not dims[axis].dim_param]
    if fixed:
        names = ', '.join(('batch', '', 'height', 'width')[a] for a in fixed)
        os.remove(path)
        raise UserError(f'--dynamic: the exported graph fixes the input {names} (the '
                        'model uses them as Python numbers somewhere); export a fixed '
                        '--shape instead (one file per input size)')


def _is_dynamic_shape_error(exc: BaseException) -> bool:
    text = ''
    while exc is not None:
        text += f'{type(exc).__name__}: {exc}\n'
        exc = exc.__cause__ or exc.__context__
    return any(key in text for key in ('ConstraintViolation', 'Constraints violated',
                                       'dynamic_shapes', 'specialized', 'guard'))


def _dynamic_error(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), '')
    return ('--dynamic: the model cannot be exported with a dynamic batch / height / '
            f'width ({type(exc).__name__}: {first[:300]}); export a fixed --shape '
            'instead (one file per input size)')


def _drop_value_info(path: str) -> None:
    """The TorchScript exporter's shape inference cannot follow some Reshape chains
    and records wrong intermediate shapes (onnxruntime then warns); drop them."""
    import onnx
    model = onnx.load(path)
    del model.graph.value_info[:]
    onnx.save(model, path)


def check_standard_domains(path: str) -> None:
    """Every node of ``path`` (functions included) is a standard ONNX op."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    nodes = list(model.graph.node) + [n for f in model.functions for n in f.node]
    custom = sorted({f'{n.domain}::{n.op_type}' for n in nodes
                     if n.domain not in _STANDARD_DOMAINS})
    if custom:
        raise RuntimeError(f'{path}: the exported graph has non-standard ops {custom}')
