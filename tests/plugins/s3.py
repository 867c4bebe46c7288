"""Pytest fixtures: s3."""
