"""Unit tests of the ChubaoFS provider."""
