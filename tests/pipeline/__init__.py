"""End-to-end monitoring pipeline on loopback (real Prometheus and Alertmanager)."""
