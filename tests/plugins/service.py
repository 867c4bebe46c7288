"""Pytest fixtures: service."""
