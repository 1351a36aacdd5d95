"""Placeholder: the Redis fixtures are being written."""
