"""streamengine selectors."""
