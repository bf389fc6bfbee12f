"""Every output format, and that nothing from a capture reaches a terminal raw."""
