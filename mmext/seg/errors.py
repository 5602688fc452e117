"""Configuration errors of the LaU segmentation modules."""
from mmext.utils.errors import UserError


class LaUConfigError(UserError, ValueError):
    """A LaU head / loss / offset branch configured inconsistently (raised at build).

    A :class:`~mmext.utils.errors.UserError`, so the tools print it on one line, and
    a ``ValueError`` for code that catches that.
    """
