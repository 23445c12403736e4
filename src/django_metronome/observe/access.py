"""
Who may read the metrics: staff users, the bearer of a token, or listed addresses.

A request is let in by any one of:

* a logged-in, active staff user (always; the default is that alone);
* ``Authorization: Bearer <METRONOME["METRICS_TOKEN"]>``, when the token is set
  (compared in constant time);
* a client address (``REMOTE_ADDR``) inside one of
  ``METRONOME["METRICS_ALLOWED_IPS"]`` (addresses or networks, ``"10.0.0.0/8"``).

Otherwise the answer is 401 when a token is set (with ``WWW-Authenticate:
Bearer``: a scraper should send it), else 403. ``X-Forwarded-For`` is never
read: it is whatever the client says; behind a proxy, let a middleware you
trust set ``REMOTE_ADDR``, or use the token.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from ..conf import conf

__all__ = ["address_allowed", "parse_networks", "refusal"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The realm named in ``WWW-Authenticate``.
REALM = "django-metronome metrics"


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """
    ``["127.0.0.1", "10.0.0.0/8", "::1"]`` as networks; a ValueError names a bad entry.

    A plain address is a network of one; host bits set in a network (``10.0.0.1/8``)
    are allowed, as ``ip_network(strict=False)`` allows them.
    """
    networks = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"{entry!r} is not a string")
        networks.append(ipaddress.ip_network(entry.strip(), strict=False))
    return networks


def address_allowed(address: str, networks: Iterable[Network]) -> bool:
    """Whether ``address`` (``REMOTE_ADDR``) is inside one of ``networks``."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # "::ffff:127.0.0.1", as a dual-stack server reports it
    return any(ip in network for network in networks)


def _bearer(request: HttpRequest) -> str | None:
    scheme, _space, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()


def refusal(request: HttpRequest) -> HttpResponse | None:
    """None if ``request`` may read the metrics; else the response that says why not."""
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return None
    token = conf.METRICS_TOKEN
    presented = _bearer(request)
    if token and presented is not None and hmac.compare_digest(presented, token):
        return None
    allowed = conf.METRICS_ALLOWED_IPS
    if allowed and address_allowed(request.META.get("REMOTE_ADDR", ""), parse_networks(allowed)):
        return None
    if token:
        if presented is None:
            text = _(
                "Authentication required: send the token of METRONOME['METRICS_TOKEN'] in an "
                "'Authorization: Bearer <token>' header, or log in as a staff user."
            )
            challenge = f'Bearer realm="{REALM}"'
        else:
            text = _(
                "The bearer token is not METRONOME['METRICS_TOKEN']: send the token the "
                "settings hold."
            )
            challenge = f'Bearer realm="{REALM}", error="invalid_token"'
        response = HttpResponse(text, status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = challenge
        return response
    if user is not None and user.is_authenticated:
        text = _("Only staff users may read the metrics: this user is not staff.")
    else:
        text = _(
            "Forbidden: log in as a staff user, or let the scraper in with "
            "METRONOME['METRICS_TOKEN'] (a bearer token) or METRONOME['METRICS_ALLOWED_IPS']."
        )
    return HttpResponse(text, status=403, content_type="text/plain; charset=utf-8")
