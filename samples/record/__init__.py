"""Recorder for issue 3: make real Linux sockets fail inside network namespaces.

Each scenario builds a private topology (client ns -- delay ns -- router ns -- server ns),
captures the client's and the server's interface with tcpdump, runs small socket programs
(:mod:`record.agent`) inside the namespaces and writes down what every socket call returned.

Entry point: ``python samples/record.py --out DIR [--only NAME]``.
"""
