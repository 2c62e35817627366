"""``python:FILE.py:FUNCTION``: a user's own scoring function, loaded from a Python file."""

from __future__ import annotations

import importlib.util
import inspect
import numbers
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ..errors import ConfigError, PromptmillError
from ..task import Example, check_user_file
from .base import Metric, Score, clip, digest, resolve_path

PYTHON_PREFIX = "python:"


def _load_module(path: Path, where: str) -> Any:
    # A unique module name per file, so two metric.py files in different folders never clash.
    module_name = "promptmill_user_metric_" + digest(str(path), 12)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError("cannot load this file as Python", where=where,
                          fix="give a .py file: python:FILE.py:FUNCTION")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # sys.exit() in user code must not end promptmill
        sys.modules.pop(module_name, None)
        raise ConfigError(f"importing the metric file failed (it {_describe(exc)})",
                          where=where, fix="fix the error in that file") from exc
    return module


def _describe(exc: BaseException) -> str:
    """What user code did, in words: sys.exit() is not an exception to the user."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({clip(repr(exc.code), 40)})"
    return clip(f"raised {type(exc).__name__}: {exc}", 300)


class PythonMetric(Metric):
    """A user's function ``fn(prediction, example, **params)`` loaded from a Python file.

    It may return a float, a bool, a ``(float, feedback)`` tuple or a :class:`Score`.
    """

    def __init__(self, path: Path, function: str, params: dict[str, Any] | None = None):
        self.path, self.function, self.params = path, function, params or {}
        self.name = f"{PYTHON_PREFIX}{path}:{function}"
        self.where = f"{path}:{function}"
        module = _load_module(path, str(path))
        fn = getattr(module, function, None)
        if not callable(fn):
            found = sorted(n for n, v in vars(module).items()
                           if inspect.isfunction(v) and not n.startswith("_"))
            raise ConfigError(f"no function '{function}' in the metric file", where=str(path),
                              fix=f"define def {function}(prediction, example) there, or use "
                                  f"one of: {', '.join(found) or 'no functions found'}")
        self._check_signature(fn)
        self.fn = fn

    def _check_signature(self, fn: Callable[..., Any]) -> None:
        try:
            inspect.signature(fn).bind("prediction", None, **self.params)
        except TypeError as exc:
            raise ConfigError(f"the metric function cannot be called as "
                              f"{self.function}(prediction, example"
                              f"{''.join(f', {k}=...' for k in self.params)}) ({exc})",
                              where=self.where,
                              fix=f"define def {self.function}(prediction, example"
                                  f"{''.join(f', {k}' for k in self.params)})") from None
        except ValueError:
            pass  # builtins without a signature: find out when called

    def score(self, prediction: str, example: Example) -> Score:
        try:
            result = self.fn(prediction, example, **self.params)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit() and friends included
            raise PromptmillError(
                f"the metric function {_describe(exc)} (example '{clip(example.id)}')",
                where=self.where,
                fix="fix the metric function: it must return a score, and it is called as "
                    "fn(prediction: str, example: promptmill.task.Example)") from exc
        return self._to_score(result)

    def _to_score(self, result: Any) -> Score:
        feedback = None
        if isinstance(result, Score):
            result, feedback = result.value, result.feedback
        elif isinstance(result, tuple) and len(result) == 2 and (
                result[1] is None or isinstance(result[1], str)):
            result, feedback = result
        if type(result).__module__ == "numpy" and hasattr(result, "item"):
            result = result.item()  # numpy.float32, numpy.bool_: plain Python numbers
        if not isinstance(result, numbers.Real):
            raise PromptmillError(
                f"the metric function returned {clip(repr(result), 60)}", where=self.where,
                fix="return a float in [0, 1], a bool, a (float, feedback) tuple or a "
                    "promptmill.metrics.Score")
        # Out of range, NaN or infinite: Metric checks every score and says so, never clamps.
        # kept as returned (a bool stays a bool in what is stored); Real is float-like enough
        return Score(cast(float, result), feedback)


def python_metric(name: str, params: dict[str, Any], base_dir: Path | None) -> PythonMetric:
    """Build the metric for a name ``python:FILE.py:FUNCTION``; FILE resolves against base_dir."""
    file, sep, function = name[len(PYTHON_PREFIX):].rpartition(":")
    if not sep or not file or not function.isidentifier():
        raise ConfigError(f"bad python metric '{name}'", where="metric",
                          fix="write python:FILE.py:FUNCTION, e.g. python:metrics.py:score")
    path = resolve_path(file, base_dir)
    check_user_file(path, what="metric file", error=ConfigError,
                    missing_fix=f"check the path in python:FILE.py:FUNCTION (for function "
                                f"'{function}'); a relative path is relative to the config file")
    return PythonMetric(path.resolve(), function, params)
