"""Columns the tables need and Django lacks: aware datetimes whatever USE_TZ says, exact job ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models

from ..db import from_db, to_db

__all__ = ["AwareDateTimeField", "JobIdField"]


class AwareDateTimeField(models.DateTimeField):
    """
    A datetime that is aware on both sides of the ORM, whatever ``USE_TZ`` says.

    The package works in aware datetimes (APScheduler does). With
    ``USE_TZ=True`` this is Django's own DateTimeField. With ``USE_TZ=False``
    Django stores naive wall times in ``TIME_ZONE``: aware values are
    converted to that on the way in, and naive values read back are taken to be
    in ``TIME_ZONE`` and returned in UTC. (Within the repeated hour of a DST
    change such a wall time names two instants; the first is taken. That is
    the cost of ``USE_TZ=False``.)
    """

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if isinstance(value, datetime) and value.tzinfo is not None and not settings.USE_TZ:
            return to_db(value)
        return value

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return from_db(value) if isinstance(value, datetime) else value


class JobIdField(models.CharField):
    """
    A job id, compared exactly on every database.

    MySQL's and MariaDB's default collations are case- and accent-insensitive
    and ignore trailing spaces: "Report", "report" and "rapport" would be one
    key. There the column gets a binary collation (which the ledger's
    ``job_id`` copies, as a foreign key takes its target's collation).
    """

    def db_parameters(self, connection: Any) -> dict[str, Any]:
        params = super().db_parameters(connection)
        if connection.vendor == "mysql" and not self.db_collation:
            if connection.mysql_is_mariadb:
                params["collation"] = "utf8mb4_nopad_bin"
            elif connection.mysql_version >= (8, 0, 17):
                params["collation"] = "utf8mb4_0900_bin"
            else:
                params["collation"] = "utf8mb4_bin"
        return params
