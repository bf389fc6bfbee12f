"""The optional accelerator beside the Python pipeline: the C first pass, fast decoding,
parallel workers. Without it (deleted, or built without a compiler) reports are the same."""
