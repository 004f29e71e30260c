"""Signals of the metrics app: how its services announce what other layers act on."""

from django.dispatch import Signal

# A call ended (its last connection closed), sent after the transaction committed, with
# ``conference_id``. ``metrics.tasks`` queues the call's summary.
call_ended = Signal()
