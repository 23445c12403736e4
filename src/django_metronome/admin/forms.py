"""The pause-until form: a date and time, read in a time zone chosen on the form."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..store.db import utcnow
from ..time.zones import zone_or_utc


class PauseUntilForm(forms.Form):
    """
    A date and time, read in a time zone chosen on the form.

    The choices are the jobs' own zones and the admin's current zone; the job's
    page offers its own zone first. A time that the zone skips (spring forward)
    or repeats (fall back) is refused, since it names no single instant.
    """

    until = forms.DateTimeField(
        label=_("Resume at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=[
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d %H:%M:%S",
        ],
    )
    zone = forms.ChoiceField(label=_("Time zone"))
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=1000,
        help_text=_("Why it is paused: shown, with who paused it and when, until it is resumed."),
        widget=forms.TextInput(attrs={"placeholder": _("Why (optional)")}),
    )

    def __init__(
        self, *args: Any, zones: list[tuple[str, str]], form_id: str = "", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.zones = {value for value, _label in zones}
        cast(forms.ChoiceField, self.fields["zone"]).choices = zones
        if form_id:
            # The fields sit outside their <form> element (see the job's page).
            for field in self.fields.values():
                field.widget.attrs["form"] = form_id
        if not self.is_bound:
            self.initial.setdefault("zone", zones[0][0])

    def full_clean(self) -> None:
        # Django reads a naive date-time in the current time zone: make that the chosen one.
        zone = self.data.get(self.add_prefix("zone")) if self.is_bound else None
        if zone in self.zones:
            with timezone.override(zone_or_utc(zone)):
                super().full_clean()
        else:
            super().full_clean()

    def clean_until(self) -> datetime:
        until: datetime = self.cleaned_data["until"]
        if timezone.is_naive(until):
            # Without USE_TZ Django leaves it naive: read it in the chosen zone here.
            until = until.replace(tzinfo=zone_or_utc(self.data.get(self.add_prefix("zone"))))
        if until <= utcnow():
            raise forms.ValidationError(_("Choose a time in the future."))
        return until


def zone_choices(job_zones: list[str], *, job_first: bool = True) -> list[tuple[str, str]]:
    """
    Choices for :class:`PauseUntilForm`: the jobs' zones and the admin's current zone.

    The first choice is the default: the job's zone on a job's page (``job_first``),
    the admin's zone otherwise.
    """
    current = timezone.get_current_timezone_name()
    zones = list(dict.fromkeys(job_zones))
    choices = [(name, _zone_label(name, len(zones) == 1, name == current)) for name in zones]
    if current not in zones:
        mine = (current, _("{zone} (your current time zone)").format(zone=current))
        if job_first:
            choices.append(mine)
        else:
            choices.insert(0, mine)
    return choices


def _zone_label(name: str, one_job: bool, yours: bool) -> str:
    if one_job and yours:
        pattern = _("{zone} (the job's time zone, and yours)")
    elif one_job:
        pattern = _("{zone} (the job's time zone)")
    elif yours:
        pattern = _("{zone} (a selected job's time zone, and yours)")
    else:
        pattern = _("{zone} (a selected job's time zone)")
    return pattern.format(zone=name)
