"""portal_stats admin."""
