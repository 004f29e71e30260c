"""Reads of the egress app, always scoped to the calling app (service)."""

from __future__ import annotations

from django.db.models import QuerySet

from conference.models import Service
from egress.errors import TaskNotFound
from egress.models import EgressFile, EgressTask


def task_queryset(*, service: Service) -> QuerySet[EgressTask]:
    return (
        EgressTask.objects.filter(service=service)
        .select_related("job")
        .prefetch_related("files")
        .order_by("-created_at", "id")
    )


def task_get(*, service: Service, task_id: str) -> EgressTask:
    """The app's task; another app's task is as unknown as a missing one."""
    task = task_queryset(service=service).filter(id=task_id).first()
    if task is None:
        raise TaskNotFound(f"task {task_id} not found")
    return task


def file_get(*, task: EgressTask, name: str) -> EgressFile:
    file = EgressFile.objects.filter(task=task, name=name).first()
    if file is None:
        raise TaskNotFound(f"task {task.id} has no file {name}")
    return file
