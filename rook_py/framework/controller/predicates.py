"""Event filters applied by a source before its handler maps an event to requests.

Mirrors controller-runtime pkg/predicate/predicate.go: a predicate answers, per event kind,
"should this event reach the workqueue?". Every method defaults to ``True`` so a predicate only
states the events it cares about. Predicates see the objects the informer delivered; they must
treat them as read-only (they are the cache's own dicts).

Note on deletes: ``delete`` receives the last known state, which for an object that vanished
while the watch was down is the ``DeletedFinalStateUnknown`` payload, already unwrapped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rook_py.framework.kube.selectors import parse_selector, selector_from_label_selector

JSON = dict[str, Any]
ObjectFilter = Callable[[JSON], bool]


class Predicate:
    """Base predicate: lets every event through. Subclass and override what you filter."""

    def create(self, obj: JSON) -> bool:
        return True

    def update(self, old: JSON, new: JSON) -> bool:
        return True

    def delete(self, obj: JSON) -> bool:
        return True

    def generic(self, obj: JSON) -> bool:
        return True


class FuncPredicate(Predicate):
    """A predicate from optional callables; a missing callable lets its events through."""

    def __init__(
        self,
        *,
        create: ObjectFilter | None = None,
        update: Callable[[JSON, JSON], bool] | None = None,
        delete: ObjectFilter | None = None,
        generic: ObjectFilter | None = None,
    ) -> None:
        self._create, self._update, self._delete, self._generic = create, update, delete, generic

    def create(self, obj: JSON) -> bool:
        return self._create(obj) if self._create else True

    def update(self, old: JSON, new: JSON) -> bool:
        return self._update(old, new) if self._update else True

    def delete(self, obj: JSON) -> bool:
        return self._delete(obj) if self._delete else True

    def generic(self, obj: JSON) -> bool:
        return self._generic(obj) if self._generic else True


def new_predicate_funcs(fn: ObjectFilter) -> Predicate:
    """One object filter applied to every event kind; on update it judges the *new* object."""
    return FuncPredicate(create=fn, update=lambda _old, new: fn(new), delete=fn, generic=fn)


def _meta(obj: JSON) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


class ResourceVersionChangedPredicate(Predicate):
    """Drops updates whose resourceVersion did not change: the informer's periodic resyncs."""

    def update(self, old: JSON, new: JSON) -> bool:
        return _meta(old).get("resourceVersion") != _meta(new).get("resourceVersion")


class GenerationChangedPredicate(Predicate):
    """Drops updates that did not bump ``metadata.generation``.

    The API server bumps generation only for spec changes of resources with a status subresource,
    so this skips the status writes a controller makes itself. It also skips label and annotation
    changes; combine with ``or_`` and the label/annotation predicates when those matter. An
    object without a generation (most core kinds) never changes it: do not use it for those.
    """

    def update(self, old: JSON, new: JSON) -> bool:
        return _meta(old).get("generation") != _meta(new).get("generation")


class AnnotationChangedPredicate(Predicate):
    """Lets updates through only when ``metadata.annotations`` changed."""

    def update(self, old: JSON, new: JSON) -> bool:
        return (_meta(old).get("annotations") or {}) != (_meta(new).get("annotations") or {})


class LabelChangedPredicate(Predicate):
    """Lets updates through only when ``metadata.labels`` changed."""

    def update(self, old: JSON, new: JSON) -> bool:
        return (_meta(old).get("labels") or {}) != (_meta(new).get("labels") or {})


class LabelSelectorPredicate(Predicate):
    """Lets through events whose object matches a ``metav1.LabelSelector`` (dict) or selector string.

    As in controller-runtime, an update is judged on the new object only: an object that stops
    matching produces no event, so pair it with a cache scoped by the same selector if the
    reconciler must see objects leave the set.
    """

    def __init__(self, selector: JSON | str) -> None:
        self._selector = (parse_selector(selector) if isinstance(selector, str)
                          else selector_from_label_selector(selector))

    def _matches(self, obj: JSON) -> bool:
        return bool(self._selector.matches(_meta(obj).get("labels") or {}))

    def create(self, obj: JSON) -> bool:
        return self._matches(obj)

    def update(self, old: JSON, new: JSON) -> bool:
        return self._matches(new)

    def delete(self, obj: JSON) -> bool:
        return self._matches(obj)

    def generic(self, obj: JSON) -> bool:
        return self._matches(obj)


class _Combined(Predicate):
    """Folds the operands' answers to each event with ``fold``: ``all`` for and_, ``any`` for or_.

    The operands are asked lazily, in order (the fold short-circuits on a generator), as
    controller-runtime's ``and``/``or`` stop at the first deciding predicate.
    """

    def __init__(self, predicates: tuple[Predicate, ...], fold: Callable[[Iterable[bool]], bool]) -> None:
        self._p = predicates
        self._fold = fold

    def create(self, obj: JSON) -> bool:
        return self._fold(p.create(obj) for p in self._p)

    def update(self, old: JSON, new: JSON) -> bool:
        return self._fold(p.update(old, new) for p in self._p)

    def delete(self, obj: JSON) -> bool:
        return self._fold(p.delete(obj) for p in self._p)

    def generic(self, obj: JSON) -> bool:
        return self._fold(p.generic(obj) for p in self._p)


class _Not(Predicate):
    def __init__(self, predicate: Predicate) -> None:
        self._p = predicate

    def create(self, obj: JSON) -> bool:
        return not self._p.create(obj)

    def update(self, old: JSON, new: JSON) -> bool:
        return not self._p.update(old, new)

    def delete(self, obj: JSON) -> bool:
        return not self._p.delete(obj)

    def generic(self, obj: JSON) -> bool:
        return not self._p.generic(obj)


def and_(*predicates: Predicate) -> Predicate:
    """True when every predicate is (``and_()`` with no argument lets everything through)."""
    return _Combined(predicates, all)


def or_(*predicates: Predicate) -> Predicate:
    """True when any predicate is (``or_()`` with no argument lets nothing through)."""
    return _Combined(predicates, any)


def not_(predicate: Predicate) -> Predicate:
    return _Not(predicate)
