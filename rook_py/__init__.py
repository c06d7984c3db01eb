"""rook-py: a Kubernetes storage-operator framework with a ChubaoFS provider."""

__version__ = "0.1.0"
