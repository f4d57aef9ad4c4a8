"""Helpers for errors that cross Trio's nurseries."""

from __future__ import annotations


def unwrap(exc: BaseException) -> BaseException:
    """The one error inside (nested) single-member exception groups, or `exc` itself.

    Trio (strict exception groups, the default since 0.25) wraps an error
    raised inside a nursery in an ExceptionGroup even when it is alone; callers
    that report "why did the server not start" want the error itself.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
