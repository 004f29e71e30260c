"""metrics views."""
