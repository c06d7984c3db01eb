"""Shared pytest configuration. The `envtest` fixture comes from rook_py's pytest plugin."""
