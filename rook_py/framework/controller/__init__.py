"""controller-runtime for rook-py: reconcilers, predicates, handlers, sources, controllers."""

from rook_py.framework.controller.builder import ControllerBuilder
from rook_py.framework.controller.controller import CacheSyncTimeout, Controller, ControllerQueue
from rook_py.framework.controller.handler import (
    EnqueueRequestForObject,
    EnqueueRequestForOwner,
    EnqueueRequestsFromMapFunc,
    EventHandler,
)
from rook_py.framework.controller.predicates import (
    AnnotationChangedPredicate,
    FuncPredicate,
    GenerationChangedPredicate,
    LabelChangedPredicate,
    LabelSelectorPredicate,
    Predicate,
    ResourceVersionChangedPredicate,
    and_,
    new_predicate_funcs,
    not_,
    or_,
)
from rook_py.framework.controller.reconcile import Reconciler, Request, Result, TerminalError
from rook_py.framework.controller.source import Channel, Kind, Source

__all__ = [
    "AnnotationChangedPredicate",
    "CacheSyncTimeout",
    "Channel",
    "Controller",
    "ControllerBuilder",
    "ControllerQueue",
    "EnqueueRequestForObject",
    "EnqueueRequestForOwner",
    "EnqueueRequestsFromMapFunc",
    "EventHandler",
    "FuncPredicate",
    "GenerationChangedPredicate",
    "Kind",
    "LabelChangedPredicate",
    "LabelSelectorPredicate",
    "Predicate",
    "Reconciler",
    "Request",
    "ResourceVersionChangedPredicate",
    "Result",
    "Source",
    "TerminalError",
    "and_",
    "new_predicate_funcs",
    "not_",
    "or_",
]
