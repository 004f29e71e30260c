"""conference models."""
