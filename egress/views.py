"""egress views."""
