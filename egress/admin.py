"""egress admin."""
