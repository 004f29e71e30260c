"""portal_stats views."""
