"""Cityscapes panoptic JSON categories <-> our contiguous labels, shared by the
dataset (``mmext.datasets.cityscapes_panoptic``) and the metric
(``mmext.evaluation.cityscapes_panoptic_metric``). A leaf module: it imports only
:mod:`mmext.utils.errors`, so the metric need not import the datasets package.
"""
from typing import Any, Dict, List, Optional, Sequence

from .errors import UserError

__all__ = ['CONVERTER_COMMAND', 'category_ids_by_name']

# The command that writes the COCO-panoptic JSON + PNGs both read (error messages).
CONVERTER_COMMAND = 'python tools/dataset_converters/cityscapes_panoptic.py <data_root>'


def category_ids_by_name(classes: Sequence[str],
                         categories: Sequence[Dict[str, Any]],
                         source: str,
                         fix: str,
                         thing_classes: Optional[Sequence[str]] = None) -> List[int]:
    """Category id of each label, matched by class name.

    Label ``i`` is the category named ``classes[i]``, whatever the (sparse) ids:
    Cityscapes labelIds, or trainIds for ``*_trainId.json``.

    Args:
        classes: class names, label order (things first).
        categories: the JSON's ``categories`` (``id``, ``name``, ``isthing``).
        source: what the categories come from, for errors (e.g. ``"'x.json'"``).
        fix: the sentence of the error message that says how to fix a class name
            that is not a category.
        thing_classes: when given, each class must be a thing here exactly when
            its category has ``isthing`` set.

    Returns:
        ``len(classes)`` category ids.

    Raises:
        UserError: a class is not a category name, or thing/stuff disagree.
    """
    by_name = {cat['name']: cat for cat in categories}
    unknown = [c for c in classes if c not in by_name]
    if unknown:
        raise UserError(f'classes {unknown} are not categories of {source} (it has '
                        f'{sorted(by_name)}). {fix}')
    if thing_classes is not None:
        wrong = [c for c in classes
                 if bool(by_name[c].get('isthing')) != (c in thing_classes)]
        if wrong:
            raise UserError(
                f'classes {wrong} are things in one and stuff in the other of '
                f'metainfo and {source} (isthing); fix thing_classes / stuff_classes')
    return [by_name[c]['id'] for c in classes]
