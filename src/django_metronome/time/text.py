"""
Words for people: lengths of time (``850 ms``, ``4.25 s``, ``3 min 5 s``) and the
translator the time core speaks through.

One way to say a duration everywhere (the admin, the command line, the
ledger's reasons, the logs), so that the same lateness reads the same in each.

The time core has no Django, so it cannot reach a translation catalogue: each
function that builds words takes ``words``, an object with ``gettext``,
``ngettext``, ``pgettext`` and ``npgettext``. :data:`ENGLISH` (the default)
returns the English source text; the Django layer passes
``django.utils.translation`` itself, so the same patterns come out of the
active language's catalogue. Patterns are whole phrases with named
placeholders (``{number} min``), never English pieces glued together, so that
a language can order the parts its own way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

__all__ = ["ENGLISH", "Words", "duration"]


class Words(Protocol):
    """Where the time core's phrases are translated: ``django.utils.translation`` fits."""

    def gettext(self, message: str) -> str: ...

    def ngettext(self, singular: str, plural: str, number: int) -> str: ...

    def pgettext(self, context: str, message: str) -> str: ...

    def npgettext(self, context: str, singular: str, plural: str, number: int) -> str: ...


class _English:
    """The source text itself: the time core's words when no catalogue is given."""

    def gettext(self, message: str) -> str:
        return message

    def ngettext(self, singular: str, plural: str, number: int) -> str:
        return singular if number == 1 else plural

    def pgettext(self, context: str, message: str) -> str:
        return message

    def npgettext(self, context: str, singular: str, plural: str, number: int) -> str:
        return singular if number == 1 else plural


#: The English source text, for callers that want no translation (``--json``, logs).
ENGLISH: Words = _English()


def duration(value: timedelta | float | None, *, empty: str = "-", words: Words = ENGLISH) -> str:
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
        text = words.pgettext("duration", "0 s")
    elif number < 0.001:
        text = words.pgettext("duration", "< 1 ms")
    elif number < 1:
        text = words.pgettext("duration", "{number} ms").format(number=f"{number * 1000:.0f}")
    elif number < 60:
        shown = f"{number:.0f}" if number.is_integer() else f"{number:.2f}"
        text = _unit("s", shown, words)
    else:
        whole = round(number)
        for big, big_unit, small, small_unit in _UNITS:
            if whole >= big:
                first, rest = divmod(whole, big)
                text = _unit(big_unit, str(first), words)
                if rest // small:
                    text = words.pgettext("duration", "{larger} {smaller}").format(
                        larger=text, smaller=_unit(small_unit, str(rest // small), words)
                    )
                break
    return sign + text


#: The units of a long duration: the larger one and the one below it are shown.
_UNITS = ((86400, "d", 3600, "h"), (3600, "h", 60, "min"), (60, "min", 1, "s"))


def _unit(unit: str, number: str, words: Words) -> str:
    # One literal per unit, so that the catalogue holds each whole pattern.
    if unit == "d":
        pattern = words.pgettext("duration", "{number} d")
    elif unit == "h":
        pattern = words.pgettext("duration", "{number} h")
    elif unit == "min":
        pattern = words.pgettext("duration", "{number} min")
    else:
        pattern = words.pgettext("duration", "{number} s")
    return pattern.format(number=number)
