"""The one way promptmill renders Jinja2: a sandbox in which a template cannot reach Python.

Prompts, rubrics and reports come from other people. A plain ``jinja2.Environment`` lets
``{{ cycler.__init__.__globals__.os.popen('id').read() }}`` run a shell command, so every
environment here is an :class:`ImmutableSandboxedEnvironment` (no attribute that starts with an
underscore, no function internals, no mutating methods), with two more limits that the stock
sandbox leaves open: ``*`` and ``**`` may not build huge strings, lists or numbers, and a
rendering stops once its output passes :data:`MAX_OUTPUT_CHARS`.

:func:`unsafe_reference` finds the same attribute names statically, so a prompt file that tries
one is refused when it is loaded, with its file, line and field, before any model call.
"""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_FUNCTION_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_METHOD_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
    SecurityError,
)

__all__ = ["MAX_OUTPUT_CHARS", "SecurityError", "TemplateTooLarge", "render_limited",
           "sandboxed_environment", "unsafe_reference"]

MAX_OUTPUT_CHARS = 1_000_000  # far beyond any prompt a context window takes
MAX_PRODUCT_ITEMS = 100_000  # 'x' * n and [..] * n
MAX_POWER_BITS = 4_096  # 2 ** n

_UNSAFE_NAMES = (UNSAFE_FUNCTION_ATTRIBUTES | UNSAFE_METHOD_ATTRIBUTES
                 | UNSAFE_GENERATOR_ATTRIBUTES | UNSAFE_COROUTINE_ATTRIBUTES
                 | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES | {"mro", "f_globals", "f_locals"})


class TemplateTooLarge(SecurityError):
    """A template that would build a value or an output too large to be a prompt."""


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _limited_mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if _sized(seq) and isinstance(count, int) and _sized(seq) * count > MAX_PRODUCT_ITEMS:
            raise TemplateTooLarge("the template repeats a value more than "
                                   f"{MAX_PRODUCT_ITEMS:,} times")
    return operator.mul(left, right)


def _limited_pow(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1:
        if exponent * max(1, abs(base).bit_length()) > MAX_POWER_BITS:
            raise TemplateTooLarge("the template computes a power too large to print")
    return operator.pow(base, exponent)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            return _limited_mul(left, right)
        if operator_name == "**":
            return _limited_pow(left, right)
        return super().call_binop(context, operator_name, left, right)


def sandboxed_environment(**options: Any) -> ImmutableSandboxedEnvironment:
    """A new sandboxed environment; ``options`` are Jinja2's (loader, autoescape, undefined...)."""
    return _Sandbox(**options)


def render_limited(template: Any, variables: dict[str, Any]) -> str:
    """Render, stopping with :class:`TemplateTooLarge` once the output passes the limit."""
    pieces: list[str] = []
    size = 0
    for piece in template.generate(**variables):
        size += len(piece)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateTooLarge(f"the template renders more than {MAX_OUTPUT_CHARS:,} "
                                   "characters")
        pieces.append(piece)
    return "".join(pieces)


def _is_unsafe(name: Any) -> bool:
    return isinstance(name, str) and (name.startswith("_") or name in _UNSAFE_NAMES)


def _referenced_names(tree: nodes.Node):
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            yield node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            yield node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            first = node.args[0]
            if isinstance(first, nodes.Const):
                yield first.value


@lru_cache(maxsize=1024)
def unsafe_reference(source: str) -> str | None:
    """The first attribute name in ``source`` that no template may use, or None.

    Syntax errors are left to rendering, which reports them with their line.
    """
    from jinja2 import TemplateSyntaxError

    try:
        tree = _STATIC.parse(source)
        return next((str(n) for n in _referenced_names(tree) if _is_unsafe(n)), None)
    except (TemplateSyntaxError, RecursionError):
        return None


_STATIC = sandboxed_environment()


def static_environment() -> ImmutableSandboxedEnvironment:
    """The sandboxed environment that static checks parse templates with (never rendered)."""
    return _STATIC
