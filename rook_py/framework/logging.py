"""structlog set-up: JSON lines by default, a console renderer on request.

Every module logs through ``get_logger(__name__)``; context (controller, namespace, name,
reconcile id) is bound with ``structlog.contextvars`` by the controller runtime, so a line
written anywhere inside a reconcile carries it without being passed around.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "warn": logging.WARNING, "error": logging.ERROR}
FORMATS = ("json", "console")


def configure_logging(level: str = "info", fmt: str = "json", stream: Any = None) -> None:
    """Configure structlog and the standard library's root logger (libraries log through it)."""
    level_name = level.lower()
    if level_name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(sorted(LEVELS))}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    numeric = LEVELS[level_name]
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=stream or sys.stderr, force=True)


class _LazyLogger:
    """A logger that resolves structlog's configuration at each call, not at creation.

    Module-level loggers are created at import time, usually before ``configure_logging``;
    a plain ``structlog.get_logger(...).bind(...)`` would freeze the configuration of that moment.
    """

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def bind(self, **values: Any) -> _LazyLogger:
        return _LazyLogger({**self._context, **values})

    def new(self, **values: Any) -> _LazyLogger:
        return _LazyLogger({"logger": self._context.get("logger"), **values})

    def __getattr__(self, method: str) -> Any:
        return getattr(structlog.get_logger().bind(**self._context), method)


def get_logger(name: str, **initial: Any) -> Any:
    """A structlog-style logger; ``name`` becomes the ``logger`` field."""
    return _LazyLogger({"logger": name, **initial})
