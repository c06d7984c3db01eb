"""A second, minimal provider proving the framework is generic (public API only)."""
