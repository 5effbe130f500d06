"""The one exception type for a user's data that cannot be used.

:class:`UserDataError` (a ``ValueError``) is the base of every error whose cause is a file or a
value the user gave, not a bug: an importer's :class:`~affectlab.data.importers.ImportError_`,
the dataset contract's :class:`~affectlab.data.schema.ContractError`, a run config's
:class:`~affectlab.engine.config.ConfigError`. Its message names the file (and where in it)
and the problem, on one line where one problem is meant; the command line prints it as
``error: <message>`` and exits with status 2, never with a traceback.
"""

from __future__ import annotations

__all__ = ["UserDataError"]


class UserDataError(ValueError):
    """A user's file or value cannot be used; the message names which and why."""
