"""Spiders used by the integration tests. Parser workers import them from here by module path."""
