"""CustomResourceDefinitions, split as apiextensions-apiserver splits them.

* definition.py -- :func:`validate_crd_definition`, what is checked when a CRD is created or
  updated (pkg/apis/apiextensions/validation).
* schema.py -- :class:`CRDVersionSchema`, one version's ``openAPIV3Schema`` and what every served
  custom resource goes through: ``validate`` (pkg/apiserver/validation), ``default``
  (defaulting.py, pkg/apiserver/schema/defaulting) and ``prune`` (pruning.py,
  pkg/apiserver/schema/pruning); formats.py holds the string formats.
* fielderrors.py -- every problem is a *cause*, a ``metav1.StatusCause`` carrying a field error.
"""

from .definition import validate_crd_definition
from .fielderrors import Cause, cause, format_value
from .schema import CRDVersionSchema

__all__ = [
    "CRDVersionSchema",
    "Cause",
    "cause",
    "format_value",
    "validate_crd_definition",
]
