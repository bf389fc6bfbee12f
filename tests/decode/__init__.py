"""Decoding link layers to TCP, UDP and ICMP."""
