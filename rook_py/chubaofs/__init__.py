"""The ChubaoFS (CubeFS) provider.

- :mod:`rook_py.chubaofs.api`: the ``ChubaoMonitor`` API (``chubaofs.rook.io/v1alpha1``): constants,
  the structural schema and CRD, defaults and semantic validation;
- :mod:`rook_py.chubaofs.monitor`: builders of the monitor stack's objects (Consul, Prometheus
  and its rules, Alertmanager, Grafana), hot reload, status, and the controller;
- :mod:`rook_py.chubaofs.provider`: ``ChubaoFSProvider``, the ``rook_py.providers`` entry point.
"""
