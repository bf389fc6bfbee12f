"""Framing: pcap, pcapng, gzip, damaged files, hashing."""
