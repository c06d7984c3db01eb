"""Unit tests for rook_py.framework.controller."""
