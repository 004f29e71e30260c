"""metrics serializers."""
