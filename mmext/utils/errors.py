"""The error type for bad user input. A leaf module: it imports nothing of mmext.

Models, datasets, metrics and tools raise :class:`UserError` (or a subclass) for a
mistake the user can fix; ``mmext.engine.errors.run_cli`` prints it as one
``mmext: error:`` line (exit status 2) instead of a traceback.
"""


class UserError(RuntimeError):
    """Bad input that the user can fix; the message says what and how."""
