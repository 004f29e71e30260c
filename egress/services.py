"""egress services."""
