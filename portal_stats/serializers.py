"""portal_stats serializers."""
