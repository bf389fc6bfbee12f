"""Helpers shared by the tests: capture builders, paths, golden reports."""
