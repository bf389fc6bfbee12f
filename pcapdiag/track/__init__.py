"""The sans-IO TCP state machine for both endpoints, the flow table, and the events it emits."""
