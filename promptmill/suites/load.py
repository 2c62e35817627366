"""A suite file read, its prompts resolved to ``NAME@VERSION``, and the whole checked before any
model call.

Bad input is one line naming the file, the line and the fix (exit 2 through the CLI): pydantic's
problems through :func:`promptmill.yamlfile.validate_with_lines`, and the checks that need the
resolved prompts (a case var no template uses, a template var a case lacks, an unknown
assertion type or model, a missing ``file://`` target) through :func:`check_suite`, which finds
the line of ``tests[i]`` or ``prompts[i]`` in the YAML only when it has something to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import ConfigError, PromptmillError
from ..prompt import Prompt
from ..yamlfile import _child_node, read_yaml, validate_with_lines
from .model import Assertion, Case, ModelEntry, PromptEntry, Suite
from .prompts import FILE_PREFIX, UnplacedError, resolve_entry, resolve_ref

if TYPE_CHECKING:
    from ..store.db import Store

__all__ = ["assertion_path", "check_models", "check_suite", "is_promptfoo", "load_suite", "locate",
           "resolve_prompts", "resolve_ref", "template_variables"]

# the YAML keys of a field, by its name and by its alias (a suite may use either)
_KEYS = {"cases": ("tests", "cases"), "assertions": ("assert", "assertions"),
         "default_test": ("defaultTest", "default_test")}


# --- loading --------------------------------------------------------------------------------
def load_suite(path: str | Path) -> Suite:
    """A native suite YAML (or JSON) file; a promptfoo config goes to its own loader."""
    path = Path(path)
    data, root = read_yaml(path, what="suite file")
    if is_promptfoo(path, data):
        from .promptfoo import load_promptfoo  # part of the package only promptfoo users need

        return load_promptfoo(path)
    return validate_with_lines(Suite, data, path, root, source=str(path), base_dir=path.parent)


def is_promptfoo(path: Path, data: Any) -> bool:
    """promptfoo's file name, or its ``providers:`` key (promptmill's own suites say models)."""
    return path.name.startswith("promptfooconfig") or (
        isinstance(data, dict) and "providers" in data)


# --- prompts --------------------------------------------------------------------------------
def resolve_prompts(suite: Suite, store: Store) -> list[tuple[str, Prompt]]:
    """Each prompt with its label ``NAME@VERSION``, in the suite's order.

    A file or inline prompt is saved to the store, as ``eval`` saves one, so it has a version
    (saving the same content again keeps its version); a stored ``NAME@TAG`` is looked up.
    Inline prompts are named ``{suite}-{n}`` unless they carry a name or a label.
    """
    return [_resolve(suite, i, entry, store) for i, entry in enumerate(suite.prompts)]


def _resolve(suite: Suite, index: int, entry: PromptEntry, store: Store) -> tuple[str, Prompt]:
    try:
        return resolve_entry(suite, index, entry, store)
    except UnplacedError as exc:  # only now is the suite's YAML read, for the line
        raise exc.at(locate(suite, ("prompts", index))) from None


# --- checks before any call -----------------------------------------------------------------
def check_suite(suite: Suite, prompts: Sequence[tuple[str, Prompt]],
                models_where: str | None = None) -> None:
    """Every problem a run would meet late, found now: one ConfigError, the first found.

    ``models_where`` names where the models came from when not the suite (``--model``).
    """
    _check_unique_labels(suite, [label for label, _ in prompts])
    check_models(suite, suite.models, models_where)
    _check_unique_case_ids(suite)
    for index in range(len(suite.cases)):
        _check_assertions(suite, index)
    _check_vars(suite, prompts)


def check_models(suite: Suite, models: Sequence[ModelEntry], where: str | None = None) -> None:
    """Known backends only, and no two models with the same name in the matrix."""
    from ..models.registry import available_models

    known = available_models()
    seen: set[str] = set()
    for index, entry in enumerate(models):
        if entry.spec.partition(":")[0] not in known:
            raise ConfigError(f"unknown model '{entry.spec}'",
                              where=where or locate(suite, ("models", index)),
                              fix=f"use one of: {', '.join(known)} (e.g. 'embedded', "
                                  "'gguf:PATH', 'openai:MODEL')")
        if entry.name in seen:
            raise ConfigError(f"the model '{entry.name}' is listed twice",
                              where=where or locate(suite, ("models", index)),
                              fix="remove one, or give each a different label")
        seen.add(entry.name)


def _check_unique_labels(suite: Suite, labels: list[str]) -> None:
    for index, label in enumerate(labels):
        if label in labels[:index]:
            raise ConfigError(f"the prompt {label} is listed twice (same name and content)",
                              where=locate(suite, ("prompts", index)),
                              fix="remove one, or give them different content or labels")


def _check_unique_case_ids(suite: Suite) -> None:
    seen: set[str] = set()
    for index in range(len(suite.cases)):
        case_id = suite.case_id(index)
        if case_id in seen:
            raise ConfigError(f"two cases have the id '{case_id}'",
                              where=locate(suite, ("cases", index)),
                              fix="give every case its own id")
        seen.add(case_id)


def _check_assertions(suite: Suite, index: int) -> None:
    from .checks import check_assertion_type  # the assertion registry of part checks

    for position, assertion in enumerate(suite.merged(index).assertions):
        try:
            check_assertion_type(assertion, "")
            _check_file_targets(assertion, suite.base_dir)
        except ConfigError as exc:  # only now is the suite's YAML read, for the line
            where = locate(suite, assertion_path(suite, index, position))
            raise ConfigError(exc.message, where=where, fix=exc.fix) from None


def assertion_path(suite: Suite, index: int, position: int) -> tuple[Any, ...]:
    """Where the ``position``-th merged assertion of a case is written: defaultTest's first."""
    inherited = len(suite.default_test.assertions) if suite.default_test else 0
    if position < inherited:
        return ("default_test", "assertions", position)
    return ("cases", index, "assertions", position - inherited)


def _check_file_targets(assertion: Assertion, base_dir: Path) -> None:
    """``python:FILE.py:FUNCTION`` and ``file://`` values must name files that exist."""
    for target in _file_targets(assertion):
        path = Path(target) if Path(target).is_absolute() else base_dir / target
        if not path.is_file():
            raise ConfigError(f"the assertion '{assertion.type}' names the file '{target}', "
                              "which does not exist",
                              fix="check the path (relative paths are relative to the suite "
                                  "file)")


def _file_targets(assertion: Assertion) -> list[str]:
    targets = []
    base = assertion.base_type
    if base.startswith("python:"):  # python:FILE.py:FUNCTION
        targets.append(base.removeprefix("python:").rpartition(":")[0] or
                       base.removeprefix("python:"))
    for value in _strings(assertion.value):
        if value.startswith(FILE_PREFIX):
            target = value.removeprefix(FILE_PREFIX)
            # file://check.py:function names a function in the file
            if ".py:" in target:
                target = target.rpartition(":")[0]
            targets.append(target)
    return targets


def _check_vars(suite: Suite, prompts: Sequence[tuple[str, Prompt]]) -> None:
    """A var no template uses is a typo; a template var a case lacks fails that case's call."""
    used_by = {label: template_variables(prompt, label) for label, prompt in prompts}
    used = set().union(*used_by.values())
    for index in range(len(suite.cases)):
        case = suite.merged(index)
        _check_unused_vars(suite, index, case, used)
        for label, needed in used_by.items():
            missing = sorted(needed - set(case.vars))
            if missing:
                raise ConfigError(f"the prompt {label} uses '{missing[0]}', which case "
                                  f"'{suite.case_id(index)}' does not give",
                                  where=locate(suite, ("cases", index)),
                                  fix=f"add '{missing[0]}' to the case's vars (or to "
                                      "defaultTest.vars for every case), or change the template")


def _check_unused_vars(suite: Suite, index: int, case: Case, used: set[str]) -> None:
    if any(a.base_type.startswith("python") for a in case.assertions):
        return  # a python check is handed every var, so none of them is surely unused
    unused = sorted(set(case.vars) - used - _assertion_variables(case))
    if not unused:
        return
    name = unused[0]
    own = name in suite.cases[index].vars
    path = ("cases", index, "vars", name) if own else ("default_test", "vars", name)
    shown = ", ".join(sorted(used)) or "none"
    raise ConfigError(f"case '{suite.case_id(index)}' gives the var '{name}', which no prompt "
                      f"template uses (templates use: {shown})", where=locate(suite, path),
                      fix=f"correct its name, remove it, or use it in a template as "
                          f"{{{{ {name} }}}}")


def template_variables(prompt: Prompt, label: str) -> set[str]:
    """The variables a prompt's template reads (Jinja's own globals left out)."""
    from jinja2.defaults import DEFAULT_NAMESPACE

    from ..assembly import template_variables as read_variables

    return read_variables(prompt, f"prompt {label}") - set(DEFAULT_NAMESPACE)


def _assertion_variables(case: Case) -> set[str]:
    """Vars an assertion's value refers to as ``{{ var }}`` (promptfoo renders those)."""
    import jinja2
    from jinja2 import meta

    from ..templating import static_environment

    found: set[str] = set()
    for assertion in case.assertions:
        for value in _strings(assertion.value):
            if "{{" in value or "{%" in value:
                try:
                    found |= meta.find_undeclared_variables(static_environment().parse(value))
                except jinja2.TemplateSyntaxError:
                    continue  # a value that only looks like a template is plain text
    return found


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


# --- where in the file ----------------------------------------------------------------------
def locate(suite: Suite, path: tuple[Any, ...]) -> str:
    """``FILE:LINE`` of the deepest part of ``path`` the suite's YAML has, else ``FILE``.

    ``path`` uses the model's field names ("cases", "assertions", "default_test"); the file may
    spell them as their aliases ("tests", "assert", "defaultTest"). Read only on an error.
    """
    root = _suite_root(suite)
    node, line = root, None
    for key in path:
        child = _child(node, key)
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return f"{suite.source}:{line}" if line is not None else suite.source


def _child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    for spelling in _KEYS.get(key, (key,)) if isinstance(key, str) else (key,):
        child = _child_node(node, spelling)
        if child is not None:
            return child
    return None


def _suite_root(suite: Suite) -> yaml.Node | None:
    path = Path(suite.source)
    if not path.is_file():
        return None
    try:
        return read_yaml(path, what="suite file")[1]
    except PromptmillError:
        return None
