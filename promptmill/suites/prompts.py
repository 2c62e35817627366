"""A suite's prompts resolved to ``NAME@VERSION``: inline, from a file, or from the store.

File and inline prompts are saved to the store as ``eval`` saves them, so each has a version;
a stored ``NAME@TAG`` is looked up. Kept apart from :mod:`promptmill.suites.load` so that the
promptfoo loader, which ``load`` hands promptfoo files to, can use it without an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, PromptmillError
from ..prompt import Prompt, parse_prompt_ref
from .model import PromptEntry, Suite

if TYPE_CHECKING:
    from ..store.db import Store

__all__ = ["FILE_PREFIX", "PROMPT_FILE_SUFFIXES", "UnplacedError", "resolve_entry",
           "resolve_ref"]

PROMPT_FILE_SUFFIXES = (".yaml", ".yml", ".json")
FILE_PREFIX = "file://"


def resolve_entry(suite: Suite, index: int, entry: PromptEntry,
                  store: Store) -> tuple[str, Prompt]:
    """The ``index``-th prompt of a suite with its label; UnplacedError for bad input."""
    if entry.prompt is not None:
        name = entry.label or entry.prompt.name or f"{suite.name}-{index + 1}"
        return _saved(store, entry.prompt, name)
    assert entry.ref is not None  # PromptEntry holds exactly one of the two
    path = _prompt_path(entry.ref, suite.base_dir)
    if path is not None:
        prompt = _prompt_file(path)
        return _saved(store, prompt, entry.label or prompt.name or path.stem)
    return _stored(store, entry.ref)


class UnplacedError(Exception):
    """A ConfigError still to be given its place (found only when there is an error)."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.message, self.fix = message, fix

    def at(self, where: str) -> ConfigError:
        return ConfigError(self.message, where=where, fix=self.fix)


def resolve_ref(ref: str, store: Store, base_dir: Path, where: str) -> tuple[str, Prompt]:
    """One prompt reference (a file or ``NAME[@VERSION|@TAG]``) with its ``NAME@VERSION``."""
    try:
        path = _prompt_path(ref, base_dir)
        if path is None:
            return _stored(store, ref)
        prompt = _prompt_file(path)
    except UnplacedError as exc:
        raise exc.at(where) from None
    return _saved(store, prompt, prompt.name or path.stem)


def _prompt_path(ref: str, base_dir: Path) -> Path | None:
    """The file a reference names, or None for a stored ``NAME@TAG``."""
    text = ref.removeprefix(FILE_PREFIX)
    path = Path(text) if Path(text).is_absolute() else base_dir / text
    if ref.startswith(FILE_PREFIX) or path.suffix in PROMPT_FILE_SUFFIXES or path.is_file():
        return path
    return None


def _prompt_file(path: Path) -> Prompt:
    if not path.is_file():
        raise UnplacedError(f"prompt file '{path}' does not exist",
                        fix="check the path (relative paths are relative to the suite file), "
                            "or give a stored prompt as NAME@TAG")
    return Prompt.from_file(path)  # its own errors name the prompt file and line


def _stored(store: Store, ref: str) -> tuple[str, Prompt]:
    try:
        name, version = parse_prompt_ref(ref)
        row = store.get_prompt(name, version)
    except PromptmillError as exc:
        raise UnplacedError(f"no prompt file or stored prompt '{ref}' ({exc.message})",
                        fix="give a prompt YAML file, or NAME@VERSION or NAME@TAG of a saved "
                            "prompt ('promptmill prompts list' shows them)") from None
    label = f"{name}@{row['version']}"
    return label, Prompt.from_stored(row["body"], label, name=name)


def _saved(store: Store, prompt: Prompt, name: str) -> tuple[str, Prompt]:
    row = store.save_prompt(name, prompt.content(), prompt.hash)
    return f"{name}@{row['version']}", prompt.model_copy(update={"name": name})
