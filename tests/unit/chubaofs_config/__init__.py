"""Unit tests of the ChubaoFS monitoring config renderers."""
