"""Turn the usual user mistakes into one clear error line instead of a traceback.

``run_cli(main)`` runs a tool's ``main``; a :class:`UserError`, a missing file or an
unknown registry type is printed as ``mmext: error: ...`` (exit code 2). Set
``MMEXT_DEBUG=1`` to get the full traceback as well.
"""
import os
import re
import sys
from typing import Callable, Optional

from ..utils.errors import UserError


_UNKNOWN_TYPE = re.compile(r"`?(\S+?)`? is not in the (\S+) registry")


def explain(exc: BaseException) -> Optional[str]:
    """One-line explanation for exceptions that come from bad user input."""
    if isinstance(exc, UserError):
        return str(exc)
    text = str(exc.args[0]) if exc.args else str(exc)
    match = _UNKNOWN_TYPE.search(text)
    if isinstance(exc, KeyError) and match:
        name, registry = match.groups()
        return (f"unknown type '{name}' in the {registry} registry. Check the "
                "spelling; if it is an mmext module, add custom_imports = dict("
                "imports=['mmext'], allow_failed_imports=False) to the config "
                "(and default_scope must match: 'mmdet' or 'mmseg').")
    if isinstance(exc, FileNotFoundError):
        return f'file not found: {exc.filename or text}'
    return None


def run_cli(main: Callable[[], None]) -> None:
    """Run ``main()``; report user errors on one line and exit with status 2."""
    try:
        main()
    except Exception as exc:  # noqa: BLE001  (re-raised unless it is a user error)
        message = explain(exc)
        if message is None or os.environ.get('MMEXT_DEBUG'):
            raise
        print(f'mmext: error: {message}  (MMEXT_DEBUG=1 shows the traceback)',
              file=sys.stderr)
        sys.exit(2)
