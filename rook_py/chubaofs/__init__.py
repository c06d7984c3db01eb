"""chubaofs."""
