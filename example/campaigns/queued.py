"""
The worker mode's tasks (``EXAMPLE_WORKERS=1``): the campaign work of ``tasks.py``
as ``django.tasks`` tasks. A scheduler enqueues each fire of a campaign's end job,
and django-tasks-db's worker (``python manage.py db_worker``) runs it.

Imported only in the worker mode, whose settings configure the task backend.
"""

try:
    from django.tasks import task  # Django 6.0+
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import task

from . import tasks


@task()
def close_campaign(campaign_id: int) -> str | None:
    """End one campaign at its end date (see ``tasks.close_campaign``), on a task worker."""
    return tasks.close_campaign(campaign_id)
