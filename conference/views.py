"""conference views."""
