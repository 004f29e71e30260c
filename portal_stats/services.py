"""portal_stats services."""
