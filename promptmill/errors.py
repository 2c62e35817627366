"""Errors a user can act on.

Every error promptmill raises for bad input is a :class:`PromptmillError`: one line that says
where the problem is (file, line or field), what is wrong, and how to fix it. The CLI prints it
and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PromptmillError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def __reduce__(self):
        # pickled with its fields (for Ray workers), whatever a subclass's __init__ takes
        return (_rebuild, (type(self), self.message, self.where, self.fix, self.__dict__))

    def one_line(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text = f"{text.rstrip('.')}. Fix: {self.fix}"
        return " ".join(text.split())


def _rebuild(cls: type[PromptmillError], message: str, where: str | None, fix: str | None,
             state: dict) -> PromptmillError:
    error = cls.__new__(cls)
    PromptmillError.__init__(error, message, where=where, fix=fix)
    error.__dict__.update(state)
    return error


def validator_words(error: Mapping[str, Any]) -> tuple[str, str | None]:
    """A pydantic error's own words, without pydantic's 'Value error, ' tag, split into the
    message and the fix a validator wrote after 'Fix: ' (None when it wrote none)."""
    text = str(error.get("msg", "")).removeprefix("Value error, ")
    message, _, fix = text.partition(" Fix: ")
    return message.rstrip(". "), fix or None


class ConfigError(PromptmillError):
    """A task config, prompt file or option that is invalid."""


class DataError(PromptmillError):
    """A dataset file that cannot be read as examples."""


class TemplateError(PromptmillError):
    """A prompt template that cannot be rendered."""


class ModelError(PromptmillError):
    """A model that cannot be loaded or reached."""


class StoreError(PromptmillError):
    """A store URL that cannot be opened, or a record that does not exist."""


class MissingExtraError(PromptmillError):
    """An optional dependency that is not installed."""

    def __init__(self, package: str, extra: str, feature: str):
        super().__init__(
            f"{feature} needs the package '{package}', which is not installed",
            fix=f"pip install 'promptmill[{extra}]'",
        )


def require(module: str, extra: str, feature: str):
    """Import an optional dependency, or explain which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra, feature) from exc
