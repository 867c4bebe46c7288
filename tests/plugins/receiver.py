"""Pytest fixtures: receiver."""
