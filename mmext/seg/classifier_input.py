"""The classifier's input and output of any mmseg decode head, read during its forward.

Every mmseg ``BaseDecodeHead`` that predicts a per-pixel logit map ends in ``cls_seg``:
``self.dropout`` (when ``dropout_ratio > 0``) then the 1x1 ``self.conv_seg``. LaU needs
exactly that pair: the feature that feeds the classifier (the offset branch's input)
and the low-resolution logits (what LaU upsamples). :func:`capture_classifier`
records both with forward hooks (public ``nn.Module`` API) on ``head.conv_seg`` and
``head.dropout`` while the head runs its own ``forward``, so no head needs a
per-class function. The hooks live for one ``with`` block and are removed in a
``finally``; the records are a local list (nothing is kept on the module), which keeps
tracing (``torch.jit.trace``, ``torch.onnx.export``, ``torch.export``) unaffected.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, List, Sequence, Tuple

from torch import Tensor, nn


@dataclass(frozen=True)
class ClassifierCall:
    """One call of ``head.conv_seg`` during a head's forward.

    Attributes:
        feature: (N, C', h, w) the classifier's input *before* the head's dropout
            (the authors' offset input, ``encnet.py:L143-L145``; in eval mode the
            same tensor as after it).
        logits: (N, K, h, w) ``conv_seg``'s output.
    """
    feature: Tensor
    logits: Tensor


@contextmanager
def capture_classifier(head: nn.Module) -> Iterator[List[ClassifierCall]]:
    """Record every ``head.conv_seg`` call made inside the ``with`` block.

    Yields the list the calls are appended to, in call order. A head may call its
    classifier more than once (or call ``self.dropout`` before other classifiers,
    as DAHead does): each ``conv_seg`` input is traced back to the dropout call that
    produced it, by tensor identity, to recover the pre-dropout feature.
    """
    calls: List[ClassifierCall] = []
    dropped: List[Tuple[Tensor, Tensor]] = []  # (dropout input, dropout output)

    def on_dropout(module: nn.Module, args: Tuple[Any, ...], output: Tensor) -> None:
        dropped.append((args[0], output))

    def on_conv_seg(module: nn.Module, args: Tuple[Any, ...], output: Tensor) -> None:
        x = args[0]
        # Identity, not value: the conv_seg input is the very tensor dropout returned.
        feature = next((src for src, out in reversed(dropped) if out is x), x)
        calls.append(ClassifierCall(feature, output))

    handles = [head.conv_seg.register_forward_hook(on_conv_seg)]
    dropout = getattr(head, 'dropout', None)
    if isinstance(dropout, nn.Module):
        handles.append(dropout.register_forward_hook(on_dropout))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def find_logits(outputs: Sequence[Any], calls: Sequence[ClassifierCall]
                ) -> Tuple[int, ClassifierCall]:
    """(position in ``outputs``, the call) of the one output that is a ``conv_seg``
    output (identity). Raises ``LookupError`` when none or several are."""
    found = [(i, c) for i, out in enumerate(outputs) for c in calls if out is c.logits]
    if len(found) != 1:
        raise LookupError(len(found))
    return found[0]
