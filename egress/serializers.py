"""egress serializers."""
