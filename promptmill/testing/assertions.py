"""How a conformance check fails: :class:`ConformanceFailure`, raised by :func:`expect`."""

from __future__ import annotations


class ConformanceFailure(AssertionError):
    """A plugin broke one of the rules every optimizer or model backend must keep.

    An ``AssertionError``, so pytest reports it as a failed assertion with its message.
    """


def expect(condition: object, message: str) -> None:
    """Raise :class:`ConformanceFailure` unless ``condition``; unlike ``assert``, never skipped
    under ``python -O``."""
    if not condition:
        raise ConformanceFailure(message)


def approx_equal(actual: float, expected: float) -> bool:
    """Equal within the default tolerance of ``pytest.approx``, without importing pytest."""
    return abs(actual - expected) <= max(1e-6 * abs(expected), 1e-12)
