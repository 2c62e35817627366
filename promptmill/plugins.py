"""One rule for the four registries: models, metrics, optimizers and strategies.

Each registry is a :class:`Registry`: a name points at a ``module:attribute`` target, and the
object is imported only when that name is first asked for, so ``import promptmill`` loads no
backend, metric library or search method. The rule (written out in docs/plugins.md):

* Built-ins are entry points of promptmill's own ``pyproject.toml``, exactly like a plugin's,
  and also listed in the registry's in-code table, which is what a source checkout without
  installed metadata reads; where the two disagree (stale metadata), the table wins.
* A name is found in this order: a built-in, then the plugins in the order Python finds their
  packages on ``sys.path`` (as it finds modules). A plugin that loses a clash is ignored, and
  a one-line warning on the ``promptmill.plugins`` logger names both packages.
* The group is read once per process; each target is imported once, when first asked for.
* A plugin whose import fails fails only when its name is asked for: a one-line
  :class:`~promptmill.errors.ConfigError` naming the entry point, the missing module and the
  fix, never a raw ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, PromptmillError

PROMPTMILL = "promptmill"
log = logging.getLogger("promptmill.plugins")


@dataclass(frozen=True)
class Entry:
    """Where a registry name points: ``target`` is ``module:attribute``."""

    name: str
    target: str
    package: str  # the distribution that declares it; "promptmill" for a built-in

    @property
    def builtin(self) -> bool:
        return self.package == PROMPTMILL


class Registry:
    """The names of one entry point group (``promptmill.<group>``), built-ins first.

    ``kind`` is the word messages use ("model", "metric", ...).
    """

    def __init__(self, group: str, kind: str, builtins: Mapping[str, str]):
        self.group, self.kind = group, kind
        self.builtins = dict(builtins)
        self._entries: dict[str, Entry] | None = None
        self._loaded: dict[str, Any] = {}

    def entries(self) -> dict[str, Entry]:
        """Every known name and where it points; the group is read on the first call."""
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def names(self) -> list[str]:
        return sorted(self.entries())

    def load(self, name: str) -> Any:
        """The object ``name`` points at (imported now if it was not yet), None if unknown."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entries().get(name)
        if entry is None:
            return None
        self._loaded[name] = self._import(entry)
        return self._loaded[name]

    def clear(self) -> None:
        """Forget what was read and imported (tests that install plugins call this)."""
        self._entries, self._loaded = None, {}

    # --- reading the group -----------------------------------------------------------------
    def _read(self) -> dict[str, Entry]:
        found = {name: Entry(name, target, PROMPTMILL) for name, target in self.builtins.items()}
        # through the module attribute, so a test can stand in for the installed metadata
        for ep in importlib.metadata.entry_points(group=self.group):
            entry = Entry(ep.name, ep.value, _package(ep))
            if entry.builtin or self.builtins.get(ep.name) == ep.value:
                found.setdefault(ep.name, entry)  # promptmill's own: the table wins over it
            elif ep.name in found:
                self._warn_clash(entry, found[ep.name])
            else:
                found[ep.name] = entry
        return found

    def _warn_clash(self, ignored: Entry, kept: Entry) -> None:
        owner = "a promptmill built-in" if kept.builtin else f"package '{kept.package}'"
        log.warning("promptmill: the %s plugin '%s' of package '%s' is ignored: %s has that "
                    "name (rename the entry point in %s's %s group)", self.kind, ignored.name,
                    ignored.package, owner, ignored.package, self.group)

    # --- importing a target ----------------------------------------------------------------
    def _import(self, entry: Entry) -> Any:
        module, _, attribute = entry.target.partition(":")
        try:
            found = importlib.import_module(module)
            for part in attribute.split(".") if attribute else ():
                found = getattr(found, part)
            return found
        except PromptmillError:
            raise  # already one line with its fix (say, an extra to install)
        except Exception as exc:  # an installed plugin may fail in any way: say which one
            raise self._broken(entry, exc) from None

    def _broken(self, entry: Entry, exc: Exception) -> ConfigError:
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        if missing:
            fix = (f"install the package that provides the module '{missing}', or reinstall "
                   f"or uninstall '{entry.package}'")
        else:
            fix = f"reinstall or uninstall the package '{entry.package}' that provides it"
        label = "built-in" if entry.builtin else "plugin"
        return ConfigError(f"the {self.kind} {label} '{entry.name}' ({entry.target}) failed to "
                           f"load ({type(exc).__name__}: {exc})",
                           where=f"entry point {self.group}: {entry.name}", fix=fix)


def _package(ep: importlib.metadata.EntryPoint) -> str:
    """The distribution that declares ``ep``, by its name ("an unknown package" if none)."""
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return name.lower().replace("_", "-") if name else "an unknown package"
