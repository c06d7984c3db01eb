"""The ``ChubaoMonitor`` API: ``types`` (constants), ``schema`` and ``crd`` (what the API server
enforces), ``defaults`` and ``validation`` (the same rules in code, plus what a schema cannot say)."""
