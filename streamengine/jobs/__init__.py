"""Media jobs: server-side work on a room's media, run by Celery workers (queue ``media``).

``services`` holds every state change of a job row (claim, lease, stop, reap), ``runtime``
runs one job (its asyncio loop, joined to the room through the portal's signaling),
and each job kind is a module here (``recording``, …) registered by ``kinds``.
"""
