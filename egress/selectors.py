"""egress selectors."""
