"""YAML files read as plain data, with one-line errors that name the file, line and field.

A leaf module (errors and the size-checked file reader only), so configs, prompts and
anything else kept in YAML load the same way without importing one another.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError, validator_words
from .task import read_user_text

M = TypeVar("M", bound=BaseModel)

# Anchors and aliases may repeat a part of the file, but not blow it up ("billion laughs"):
# everything the aliases add, counted in values and characters, stays under this.
MAX_ALIAS_GROWTH = 1_000_000
MAX_YAML_DEPTH = 100


def read_yaml(path: Path, what: str = "task config") -> tuple[Any, yaml.Node | None]:
    """Plain YAML only (SafeLoader: no !!python tags), with one-line errors naming the line."""
    text = read_user_text(path, what=what, error=ConfigError,
                          missing_fix="check the path (a relative path is relative to the "
                                      "current folder, or to the config that names it)")
    try:
        return _parse_yaml(text, path)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path, text) from None
    except RecursionError:
        raise ConfigError(f"the YAML nests more than {MAX_YAML_DEPTH} levels deep",
                          where=str(path), fix="flatten the file") from None
    except ValueError as exc:  # an integer of more than 4,300 digits, a bad date, ...
        raise ConfigError(f"unreadable YAML value ({exc})", where=str(path),
                          fix="quote the value to keep it as text") from None


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader that builds only what JSON can hold, as every config ends up in the store.

    Dates stay text, mapping keys become text, and !!binary, !!set, !!omap and !!pairs are
    refused: a date or a number key would otherwise fail later, far from the file.
    """

    def construct_mapping(self, node: yaml.MappingNode,
                          deep: bool = False) -> dict[Hashable, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        return {k if isinstance(k, str) else json.dumps(k): v for k, v in mapping.items()}


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> None:
    raise yaml.constructor.ConstructorError(
        None, None, f"the tag {node.tag} does not hold plain data", node.start_mark)


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return loader.construct_yaml_str(node)  # a date stays the text it was written as


_PlainLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
for _tag in ("binary", "set", "omap", "pairs"):
    _PlainLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)


def _parse_yaml(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    """Compose once, check the node tree, then build the objects from it."""
    loader = _PlainLoader(text)
    try:
        root = loader.get_single_node()
        _check_size(root, text, path)
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.YAMLError, path: Path, text: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    position = getattr(exc, "position", None)
    if mark is not None:
        line = mark.line + 1
    elif isinstance(position, int):  # a ReaderError: a bad character
        line = text.count("\n", 0, position) + 1
    else:
        line = None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    fix = "check indentation and quoting on that line"
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
        fix = "remove the tag: promptmill reads plain YAML only (no !!python or custom tags)"
    where = f"{path}:{line}" if line else str(path)
    return ConfigError(f"invalid YAML ({problem})", where=where, fix=fix)


def _check_size(root: yaml.Node | None, text: str, path: Path) -> None:
    """Refuse alias bombs, recursive aliases and absurd nesting before building any object."""
    weights: dict[int, int] = {}
    depth_of: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            kids = _children(node)
            weights[key] = 1 + len(getattr(node, "value", "") if isinstance(
                node, yaml.ScalarNode) else "") + sum(weights[id(k)] for k in kids)
            depth_of[key] = 1 + max((depth_of[id(k)] for k in kids), default=0)
            visiting.discard(key)
            if weights[key] > len(text) + MAX_ALIAS_GROWTH:
                raise ConfigError("anchors and aliases expand this YAML to more than "
                                  f"{MAX_ALIAS_GROWTH:,} values and characters",
                                  where=f"{path}:{node.start_mark.line + 1}",
                                  fix="write the repeated part fewer times")
            if depth_of[key] > MAX_YAML_DEPTH:
                raise ConfigError(f"the YAML nests more than {MAX_YAML_DEPTH} levels deep",
                                  where=f"{path}:{node.start_mark.line + 1}",
                                  fix="flatten the file")
            continue
        if key in weights:
            continue
        if key in visiting:
            raise ConfigError("an alias refers to the collection it is in (a recursive anchor)",
                              where=f"{path}:{node.start_mark.line + 1}",
                              fix="remove the alias or point it at another anchor")
        visiting.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in weights)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def validate_with_lines(model: type[M], data: Any, path: Path, root: yaml.Node | None,
                        **extra: Any) -> M:
    if not isinstance(data, dict):
        found = "the file is empty" if data is None else f"found {_yaml_kind(data)}"
        raise ConfigError(f"expected a mapping of settings ({found})", where=str(path),
                          fix="write the file as 'key: value' lines")
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as exc:
        raise _field_error(model, exc, path, root) from None
    except RecursionError:  # a validator that recursed on a hostile value (a regex, a schema)
        raise ConfigError("a value in this file is nested too deeply to check", where=str(path),
                          fix="simplify the deeply nested value (brackets, parentheses)") from None


def _field_error(model: type[BaseModel], exc: ValidationError, path: Path,
                 root: yaml.Node | None) -> ConfigError:
    """The first problem pydantic found, as one line naming the field, its line and the fix."""
    errors = exc.errors()
    err = errors[0]
    loc, node = _shown_location(root, tuple(err["loc"]), err["type"])
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    field = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_fields(model, loc[:-1])) or "see the documentation"
        msg, fix = f"unknown field '{field}'", f"remove it or use one of: {allowed}"
    elif kind == "missing":
        msg, fix = f"missing required field '{field}'", f"add '{loc[-1]}:' to the file"
    else:
        got = "" if kind == "value_error" else _got(err.get("input"))  # its own words suffice
        words, own_fix = validator_words(err)
        msg, fix = f"field '{field}': {words}{got}", own_fix or "correct the value"
    others = {_shown_location(root, tuple(e["loc"]), e["type"])[0] for e in errors} - {loc}
    if others:
        msg += f" ({len(others)} more field{'s' if len(others) > 1 else ''} to fix after this)"
    return ConfigError(msg, where=f"{path}{line}", fix=fix)


def _shown_location(root: yaml.Node | None, loc: tuple[Any, ...], kind: str
                    ) -> tuple[tuple[Any, ...], yaml.Node | None]:
    """``loc`` without pydantic's union tags ('float', 'function-after[...]'), and its node.

    A part of the location is kept when the YAML has it; a missing field is kept as the last.
    """
    node, shown = root, []
    for position, key in enumerate(loc):
        child = _child_node(node, key)
        if child is not None:
            node = child
            shown.append(key)
        elif kind == "missing" and position == len(loc) - 1:
            shown.append(key)
    return tuple(shown), node


def _child_node(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        match = [v for k, v in node.value if getattr(k, "value", None) == str(key)]
        return match[0] if match else None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(
            node.value):
        return node.value[key]
    return None


def _got(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return f" (got {text if len(text) <= 60 else text[:57] + '...'})"
    return f" (got {_yaml_kind(value)})"


def _yaml_kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number",
            float: "a number", bool: "true/false"}.get(type(value), type(value).__name__)


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The fields the model at ``loc`` accepts; list indices and dict keys are stepped over."""
    current: Any = model
    for key in loc:
        info = getattr(current, "model_fields", {}).get(str(key))
        if info is not None:
            current = _model_in(info.annotation)
    fields = getattr(current, "model_fields", {})
    return [name for name, info in fields.items() if not info.exclude]


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``Model | None``, ``list[Model]``... (or the annotation)."""
    import typing

    todo = [annotation]
    while todo:
        arg = todo.pop(0)
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        todo.extend(typing.get_args(arg))
    return annotation


def load_yaml_model(path: Path, model: type[M]) -> M:
    data, root = read_yaml(path, what=f"{model.__name__.lower()} file")
    return validate_with_lines(model, data, path, root)
