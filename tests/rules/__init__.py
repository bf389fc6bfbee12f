"""Rule files: parsing, validation, the built-in rules and their own tests."""
