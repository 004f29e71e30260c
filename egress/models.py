"""egress models."""
