"""conference selectors."""
