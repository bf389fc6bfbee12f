"""The two-sided TCP state machine and the flow table."""
