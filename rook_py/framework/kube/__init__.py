"""Kubernetes values, once: what the API server means by a selector, a quantity, a list merge,
a time, an owner reference and a condition.

Every part of rook-py that needs one of these uses this package (the informer cache, ``objects``,
the providers, the envtest emulator, test doubles), so the client side and the emulated server
agree by construction, and both agree with kube-apiserver, whose behaviour and messages each
module follows (upstream sources are named in each). This package imports nothing else of ours.

- selectors.py: label and field selectors (parse, match, canonical string, error messages)
- quantity.py: resource.Quantity (parse, compare, canonical form as the server writes it)
- lists.py: list types, map keys and patch merge keys of the built-in kinds, one table
- times.py: metav1.Time / MicroTime
- owners.py: owner and controller references
- conditions.py: status conditions
"""
