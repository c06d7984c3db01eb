"""CRD conversion: ConversionReview v1, hub and spoke.

After controller-runtime pkg/webhook/conversion and pkg/conversion (``Hub``/``Convertible``):
one version of a kind is the hub; every other version (a spoke) knows how to convert itself to
the hub and back, so N versions need 2(N-1) functions instead of N(N-1). Converting spoke A to
spoke B goes A -> hub -> B. A converter gets a deep copy and returns the converted object; it
must carry everything across (unknown-to-it fields in an annotation, as upstream advises), so a
round trip returns the original.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
REVIEW_API_VERSION = "apiextensions.k8s.io/v1"
Converter = Callable[[JSON], JSON]


@dataclass
class Hub:
    """The conversions of one kind (``group``, ``kind``) around its ``hub_version``."""

    group: str
    kind: str
    hub_version: str
    #: version -> (to_hub, from_hub)
    spokes: dict[str, tuple[Converter, Converter]] = field(default_factory=dict)

    def spoke(self, version: str, to_hub: Converter, from_hub: Converter) -> Hub:
        if version == self.hub_version:
            raise ValueError(f"{version} is the hub of {self.kind}.{self.group}, not a spoke")
        self.spokes[version] = (to_hub, from_hub)
        return self

    def versions(self) -> set[str]:
        return {self.hub_version, *self.spokes}

    def convert(self, obj: JSON, desired_api_version: str) -> JSON:
        group, _, version = desired_api_version.rpartition("/")
        current_group, _, current = str(obj.get("apiVersion") or "").rpartition("/")
        if group != self.group or current_group != self.group:
            raise ValueError(f"cannot convert {obj.get('apiVersion')} to {desired_api_version}: "
                             f"this converter handles group {self.group}")
        for v in (current, version):
            if v not in self.versions():
                raise ValueError(f"{self.kind}.{self.group} has no version {v!r}")
        if current == version:
            return obj
        out = copy.deepcopy(obj)
        if current != self.hub_version:
            out = self.spokes[current][0](out)
            out["apiVersion"] = f"{self.group}/{self.hub_version}"
        if version != self.hub_version:
            out = self.spokes[version][1](out)
        out["apiVersion"] = desired_api_version
        return out


class ConversionHandler:
    """Answers ConversionReviews for every registered kind (one ``/convert`` path)."""

    def __init__(self) -> None:
        self._hubs: dict[tuple[str, str], Hub] = {}

    def register(self, hub: Hub) -> None:
        self._hubs[(hub.group, hub.kind)] = hub

    def kinds(self) -> list[tuple[str, str]]:
        return list(self._hubs)

    def convert_review(self, review: JSON) -> JSON:
        if review.get("apiVersion") != REVIEW_API_VERSION or review.get("kind") != "ConversionReview":
            raise ValueError(f"expected ConversionReview {REVIEW_API_VERSION}")
        request = review.get("request")
        if not isinstance(request, dict) or not request.get("uid"):
            raise ValueError("ConversionReview has no request or no request.uid")
        desired = str(request.get("desiredAPIVersion") or "")
        converted: list[JSON] = []
        try:
            for obj in request.get("objects") or []:
                group = str(obj.get("apiVersion") or "").rpartition("/")[0]
                hub = self._hubs.get((group, str(obj.get("kind") or "")))
                if hub is None:
                    raise ValueError(f"no conversion registered for {obj.get('kind')}.{group}")
                converted.append(hub.convert(obj, desired))
        except Exception as err:  # a converter's bug is the review's failure, not the server's
            response: JSON = {"uid": request["uid"], "convertedObjects": [],
                              "result": {"status": "Failure", "message": str(err) or type(err).__name__}}
        else:
            response = {"uid": request["uid"], "convertedObjects": converted,
                        "result": {"status": "Success"}}
        return {"apiVersion": REVIEW_API_VERSION, "kind": "ConversionReview", "response": response}
