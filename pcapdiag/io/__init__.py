"""Framing only: capture files (pcap, pcapng, gzip) to numbered, timestamped records and
damage. Knows nothing of decoding."""
