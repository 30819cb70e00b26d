"""Workflows that combine the stores: validate, repair, demo."""
