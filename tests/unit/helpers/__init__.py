"""Shared builders for the processors unit tests."""
