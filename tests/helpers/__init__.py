"""Helpers shared by test modules: reading each store in snapshot form and checking they agree."""
