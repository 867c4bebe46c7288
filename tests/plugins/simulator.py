"""Pytest fixtures: simulator."""
