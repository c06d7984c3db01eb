"""The ChubaoFS monitor stack: one pure builder module per component (``consul``, ``prometheus``,
``alertmanager``, ``grafana``, sharing ``common``), ``config`` renderers, ``storage`` and ``reload``
decisions, ``status``, and the ``controller`` that ties them together."""
