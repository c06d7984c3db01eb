"""Tests of the daemons package."""
