"""Rule files parsed and validated once, and the engine that matches them against the
events of one flow."""
