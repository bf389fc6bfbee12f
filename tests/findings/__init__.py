"""Findings and the report model: the JSON contract, golden reports."""
