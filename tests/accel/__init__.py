"""The accelerator: the C first pass, fast decoding and --jobs give the same reports."""
