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
          "error": logging.ERROR, "critical": logging.CRITICAL}
#: Other spellings accepted for a level, any case: ``warn``, and Rook's capnslog levels as Rook's
#: manifests write them (``ROOK_LOG_LEVEL: "INFO"``), with capnslog's one-letter and numeric
#: aliases (coreos/pkg capnslog ``ParseLevel``). capnslog has two levels we lack: NOTICE sits
#: between INFO and WARNING, and a NOTICE user still expects to see the state changes we log at
#: info, so it maps to info; TRACE maps to debug, as Rook's own ``SetGlobalLogLevel`` does
#: (rook/rook pkg/util/logging.go; its TRACE_INSECURE too).
LEVEL_ALIASES = {"warn": "warning", "notice": "info", "trace": "debug", "trace_insecure": "debug",
                 "c": "critical", "e": "error", "w": "warning", "n": "info", "i": "info", "d": "debug",
                 "t": "debug", "0": "error", "1": "warning", "2": "info", "3": "info", "4": "debug",
                 "5": "debug"}
#: The names documented for users: ours plus capnslog's.
LEVEL_NAMES = ("critical", "error", "warning", "notice", "info", "debug", "trace")
FORMATS = ("json", "console")


def parse_level(text: str) -> str:
    """A level name as users write it (ours or Rook's, any case) -> one of ``LEVELS``."""
    name = text.strip().lower()
    name = LEVEL_ALIASES.get(name, name)
    if name not in LEVELS:
        raise ValueError(f"unknown log level {text!r}; use one of {', '.join(LEVEL_NAMES)} (any case)")
    return name


_current_stream: Any = None


def configure_logging(level: str = "info", fmt: str = "json", stream: Any = None) -> None:
    """Configure structlog and the standard library's root logger (libraries log through it)."""
    global _current_stream
    level_name = parse_level(level)
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    numeric = LEVELS[level_name]
    _current_stream = stream
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


def set_level(level: str, fmt: str = "json") -> None:
    """Change level and format of a running process, keeping the stream it logs to."""
    configure_logging(level, fmt, _current_stream)


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
