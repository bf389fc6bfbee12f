"""Whole runs over real captures: samples, kernel recordings, public captures, floods, fuzzing."""
