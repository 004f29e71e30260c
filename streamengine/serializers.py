"""streamengine serializers."""
