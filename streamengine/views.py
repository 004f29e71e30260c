"""streamengine views."""
