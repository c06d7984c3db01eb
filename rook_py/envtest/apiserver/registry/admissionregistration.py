"""admissionregistration.k8s.io/v1: Validating- and MutatingWebhookConfigurations.

Defaults and validation after kubernetes pkg/apis/admissionregistration/v1/defaults.go and
pkg/apis/admissionregistration/validation (the subset tests reach): failurePolicy Fail,
matchPolicy Equivalent, empty namespace/object selectors, timeoutSeconds 10, rule scope ``*``,
service port 443, reinvocationPolicy Never (mutating); sideEffects and admissionReviewVersions
are required in v1; webhook names are unique, fully qualified (at least three segments), and a
clientConfig has exactly one of url and service.
"""

from __future__ import annotations

from .base import ALL_GENERATION, JSON, Cause, ServedResource, Strategy, cause, invalid_value, required

_SIDE_EFFECTS = ("None", "NoneOnDryRun")


class WebhookConfigurationStrategy(Strategy):
    generation = ALL_GENERATION  # metadata.generation moves with every change, as upstream's

    def __init__(self, mutating: bool) -> None:
        self.mutating = mutating

    def default(self, obj: JSON) -> None:
        for hook in obj.get("webhooks") or []:
            if not isinstance(hook, dict):
                continue
            hook.setdefault("failurePolicy", "Fail")
            hook.setdefault("matchPolicy", "Equivalent")
            hook.setdefault("namespaceSelector", {})
            hook.setdefault("objectSelector", {})
            hook.setdefault("timeoutSeconds", 10)
            if self.mutating:
                hook.setdefault("reinvocationPolicy", "Never")
            for rule in hook.get("rules") or []:
                if isinstance(rule, dict):
                    rule.setdefault("scope", "*")
            service = (hook.get("clientConfig") or {}).get("service")
            if isinstance(service, dict):
                service.setdefault("port", 443)

    def validate(self, obj: JSON) -> list[Cause]:
        causes: list[Cause] = []
        seen: set[str] = set()
        for i, hook in enumerate(obj.get("webhooks") or []):
            at = f"webhooks[{i}]"
            if not isinstance(hook, dict):
                causes.append(invalid_value(at, hook, "must be an object"))
                continue
            name = str(hook.get("name") or "")
            if not name:
                causes.append(required(f"{at}.name"))
            elif len(name.split(".")) < 3:
                causes.append(invalid_value(f"{at}.name", name, "should be a domain with at least three segments "
                                                                "separated by dots"))
            elif name in seen:
                causes.append(cause("FieldValueDuplicate", f"{at}.name", f'Duplicate value: "{name}"'))
            seen.add(name)
            if hook.get("sideEffects") not in _SIDE_EFFECTS:
                if hook.get("sideEffects") is None:
                    causes.append(cause("FieldValueNotSupported", f"{at}.sideEffects",
                                        'Unsupported value: "": supported values: "None", "NoneOnDryRun"'))
                else:
                    causes.append(cause("FieldValueNotSupported", f"{at}.sideEffects",
                                        f'Unsupported value: "{hook.get("sideEffects")}": supported values: '
                                        '"None", "NoneOnDryRun"'))
            if not hook.get("admissionReviewVersions"):
                causes.append(required(f"{at}.admissionReviewVersions",
                                       "Required value: must specify one of v1, v1beta1"))
            config = hook.get("clientConfig") or {}
            if bool(config.get("url")) == bool(config.get("service")):
                causes.append(required(f"{at}.clientConfig", "Required value: exactly one of url or service "
                                                             "is required"))
            timeout = hook.get("timeoutSeconds")
            if not isinstance(timeout, int) or not 1 <= timeout <= 30:
                causes.append(invalid_value(f"{at}.timeoutSeconds", timeout,
                                            "the timeout value must be between 1 and 30 seconds"))
        return causes


def admissionregistration_resources() -> list[ServedResource]:
    group = "admissionregistration.k8s.io"
    return [
        ServedResource(group, "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False,
                       WebhookConfigurationStrategy(mutating=False), categories=("api-extensions",)),
        ServedResource(group, "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False,
                       WebhookConfigurationStrategy(mutating=True), categories=("api-extensions",)),
    ]
