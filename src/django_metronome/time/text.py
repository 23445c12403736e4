"""
Lengths of time in words, for people: ``850 ms``, ``4.25 s``, ``3 min 5 s``.

One way to say a duration everywhere (the admin, the command line, the
ledger's reasons, the logs), so that the same lateness reads the same in each.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = ["duration"]

#: The units of a long duration: the larger one and the one below it are shown.
_UNITS = ((86400, "d", 3600, "h"), (3600, "h", 60, "min"), (60, "min", 1, "s"))


def duration(value: timedelta | float | None, *, empty: str = "-") -> str:
    """
    ``12 ms``, ``3.25 s``, ``5 s``, ``2 min 5 s``, ``1 h 3 min``, ``2 d 3 h``; ``empty`` for None.

    Under a second in whole milliseconds (``< 1 ms`` below that), under a
    minute in seconds with two decimals unless whole, then the two largest
    units. A negative length keeps its sign.
    """
    if value is None:
        return empty
    number = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign, number = ("-", -number) if number < 0 else ("", number)
    if number == 0:
        text = "0 s"
    elif number < 0.001:
        text = "< 1 ms"
    elif number < 1:
        text = f"{number * 1000:.0f} ms"
    elif number < 60:
        text = f"{number:.0f} s" if number.is_integer() else f"{number:.2f} s"
    else:
        whole = round(number)
        for big, big_unit, small, small_unit in _UNITS:
            if whole >= big:
                first, rest = divmod(whole, big)
                text = f"{first} {big_unit}"
                if rest // small:
                    text += f" {rest // small} {small_unit}"
                break
    return sign + text
