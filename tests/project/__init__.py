"""The repository itself: lint, layering, reproducible test captures, the benchmark generator."""
