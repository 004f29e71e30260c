"""conference services."""
