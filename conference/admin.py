"""conference admin."""
