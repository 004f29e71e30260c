"""portal_stats models."""
