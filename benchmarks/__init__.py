"""Benchmarks of the course against plain-PyTorch references (``make bench``)."""
