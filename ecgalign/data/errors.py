"""The project's error family: every error that bad input, a bad file or a bad setting raises derives from
``ECGAlignError``, so the command line prints it in one line (``--debug`` shows the traceback) while a real bug
(any other exception) still propagates with its traceback."""

from __future__ import annotations


class ECGAlignError(Exception):
    """Base of every error caused by input, files or settings (not by a bug). The message names the file,
    field or setting and what was expected."""


class InputError(ECGAlignError, ValueError):
    """A value, file or record is not what was expected."""


class NotApplicableError(ECGAlignError, ValueError):
    """An operation does not apply to this model or dataset (e.g. zero-shot on a model with no text space)."""


class UnknownNameError(ECGAlignError, KeyError):
    """A registry (datasets, readers) has no entry of that name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""
