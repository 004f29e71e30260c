"""portal_stats selectors."""
