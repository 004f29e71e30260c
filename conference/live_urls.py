"""Routes of the management resources over the live engine (participants, streams)."""

urlpatterns: list = []
