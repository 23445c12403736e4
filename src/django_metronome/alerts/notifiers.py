"""
The built-in notifiers: receivers of ``incident_opened`` and ``incident_resolved``.

``METRONOME["NOTIFIERS"]`` chooses them, read at each incident (so
``override_settings`` works): ``"logging"`` (the ``django_metronome.alerts``
logger: a warning when an incident opens, info when it resolves),
``"mail_admins"`` (Django's ``mail_admins``, to ``ADMINS``) and ``"webhook"``
(:mod:`.webhook`). They run where the signals are sent: the announcer's thread
in a scheduler process, never its loop or its heart. One that fails is logged
and does not stop the others.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.mail import mail_admins
from django.utils.translation import gettext as _

from ..conf import NOTIFIER_NAMES, conf
from ..signals import incident_opened, incident_resolved
from ..store.models import Incident
from . import webhook

logger = logging.getLogger("django_metronome.alerts")


def describe(incident: Incident) -> str:
    """One line: which expectation broke, for which job."""
    if incident.job_id:
        return _("%(kind)s: job %(job)s") % {
            "kind": incident.get_kind_display(),
            "job": incident.job_id,
        }
    return str(incident.get_kind_display())


def _log(incident: Incident, opened: bool) -> None:
    if opened:
        logger.warning(
            "Incident %s opened (%s): %s", incident.pk, describe(incident), incident.detail
        )
    else:
        logger.info("Incident %s resolved (%s).", incident.pk, describe(incident))


def _mail(incident: Incident, opened: bool) -> None:
    what = describe(incident)
    if opened:
        subject = _("Incident opened: %(what)s") % {"what": what}
        body = _("%(what)s\n\n%(detail)s\n\nOpened at %(opened)s.") % {
            "what": what,
            "detail": incident.detail,
            "opened": incident.opened_at.isoformat(),
        }
    else:
        subject = _("Incident resolved: %(what)s") % {"what": what}
        resolved = incident.resolved_at.isoformat() if incident.resolved_at else ""
        body = _("%(what)s\n\nOpened at %(opened)s, resolved at %(resolved)s.") % {
            "what": what,
            "opened": incident.opened_at.isoformat(),
            "resolved": resolved,
        }
    mail_admins(subject, body)


def _webhook(incident: Incident, opened: bool) -> None:
    url = conf.WEBHOOK_URL
    if not url:
        logger.error(
            "NOTIFIERS has 'webhook' but METRONOME['WEBHOOK_URL'] is not set: "
            "incident %s was not posted.",
            incident.pk,
        )
        return
    webhook.deliver(
        url,
        webhook.payload(incident, opened),
        secret=conf.WEBHOOK_SECRET,
        timeout=conf.WEBHOOK_TIMEOUT,
        retries=conf.WEBHOOK_RETRIES,
    )


_NOTIFIERS = {"logging": _log, "mail_admins": _mail, "webhook": _webhook}


def notify(incident: Incident, opened: bool) -> None:
    """Run every notifier NOTIFIERS names for this incident; log those that fail."""
    for name in conf.NOTIFIERS:
        notifier = _NOTIFIERS.get(name)
        if notifier is None:
            logger.error(
                "Unknown notifier %r in METRONOME['NOTIFIERS']; use any of %s.",
                name,
                ", ".join(NOTIFIER_NAMES),
            )
            continue
        try:
            notifier(incident, opened)
        except Exception:
            logger.exception("The %s notifier failed for incident %s.", name, incident.pk)


def on_opened(sender: Any, incident: Incident, **kwargs: Any) -> None:
    notify(incident, opened=True)


def on_resolved(sender: Any, incident: Incident, **kwargs: Any) -> None:
    notify(incident, opened=False)


def connect() -> None:
    """Connect the notifiers to the signals (AppConfig.ready(); idempotent)."""
    incident_opened.connect(on_opened, dispatch_uid="django_metronome.notifiers.opened")
    incident_resolved.connect(on_resolved, dispatch_uid="django_metronome.notifiers.resolved")
