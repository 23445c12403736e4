"""Functions that test jobs call. They are module-level so that jobs can refer to them."""

from __future__ import annotations

from typing import Any

CALLS: list[tuple[Any, ...]] = []


def noop(*args: Any, **kwargs: Any) -> None:
    """Do nothing."""


def record(*args: Any, **kwargs: Any) -> None:
    CALLS.append((args, kwargs))


def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


class Tasks:
    def method(self) -> None:
        """An instance method: cannot be stored, because the instance is not JSON."""

    @classmethod
    def class_method(cls, *args: Any, **kwargs: Any) -> str:
        return "class"

    @staticmethod
    def static_method(*args: Any, **kwargs: Any) -> str:
        return "static"
