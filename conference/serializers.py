"""conference serializers."""
