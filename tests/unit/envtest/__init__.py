"""Unit tests for the envtest emulator algorithms."""
