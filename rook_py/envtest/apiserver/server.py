"""The emulator's HTTP front: routing, authentication, content negotiation, watch streaming.

Request handling follows kube-apiserver's handler chain closely enough for kubectl and the
official Python client: URL -> RequestInfo (``staging/src/k8s.io/apiserver/pkg/endpoints/request/
requestinfo.go``), bearer-token authentication, then the REST handlers
(``.../endpoints/handlers``). Every answer is JSON; a Table is produced when the client asks for
``as=Table`` in Accept (kubectl get), and plain JSON is the fallback for everything else it may ask
for (aggregated discovery, protobuf), as client-go tolerates. Request bodies are read by their
Content-Type: JSON, YAML and the patch types; protobuf for the kinds ``protobuf.py`` decodes;
anything else is 415. Writes record managedFields under ``?fieldManager=`` or the User-Agent.

One port serves both HTTP and HTTPS (the first byte of a connection decides): the kubeconfig names
the HTTPS address because client-go only sends bearer tokens over TLS; raw clients may use HTTP.
Unauthenticated: /healthz, /livez, /readyz, /version (public-info-viewer upstream). Everything
else needs ``Authorization: Bearer <token>`` (401 Status otherwise), including the test control
plane under /envtest/v1:

* POST faults/fail-next     {"count", "code", "verb"?, "resource"?, "subresource"?, "retryAfterSeconds"?}
* POST faults/error-rates   {"rates": {"503": 0.1}, "verb"?, "resource"?}
* POST faults/latency       {"seconds", "verb"?, "resource"?}
* POST faults/close-watches -> {"closed": n};  POST faults/compact -> {"resourceVersion": "N"}
* POST faults/stall-watches {"seconds"?: none = until reset};  POST faults/reset
* GET  stats -> {"items": [{userAgent, verb, group, resource, subresource, code, count}]};  POST stats/reset
* more prefixes through ``APIServer.register_control`` (the simulated kubelet's pods/... hooks).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import math
import os
import queue
import random
import secrets
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from rook_py.framework.client import errors
from rook_py.framework.kube import times
from rook_py.framework.logging import get_logger

from . import admission, discovery, fieldvalidation
from .admission import AdmittingEngine
from .faults import Faults
from .local import Engine, LocalAPI
from .managedfields import manager_from_user_agent, validate_manager
from .openapi import openapi_v2_protobuf
from .protobuf import ProtobufError, UnsupportedKind, decode_object
from .registry import Registry, ServedResource
from .registry.base import forbidden, invalid_value, required
from .selection import Filter, make_filter
from .stats import RequestStats, selector_name
from .storage import Event, Store, dumps
from .tls import serving_cert

JSON = dict[str, Any]
ControlHandler = Callable[[str, list[str], Any], tuple[int, Any]]

_log = get_logger(__name__)

PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
PATCH_TYPES = {"application/json-patch+json": "json", "application/merge-patch+json": "merge",
               "application/strategic-merge-patch+json": "strategic"}
PROTOBUF = "application/vnd.kubernetes.protobuf"
APPLY_PATCH = "application/apply-patch+yaml"
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
OPENAPI_V2_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
#: request bodies the JSON/YAML decoder reads ("" = no Content-Type: JSON, the first serializer)
TEXT_BODY_TYPES = frozenset({"", "application/json", "application/yaml", APPLY_PATCH, *PATCH_TYPES})
_UNSUPPORTED_BODY = ("the body of the request was in an unknown format - accepted media types include: "
                     "application/json, application/yaml, " + PROTOBUF)
# upstream's request body limit (apiserver's MaxRequestBodyBytes, 3 MiB)
MAX_REQUEST_BYTES = 3 * 1024 * 1024
# how often an idle watch checks that its client is still connected (upstream: request context)
IDLE_CHECK_INTERVAL = 2.0
# upstream: --min-request-timeout=1800; a watch without timeoutSeconds lasts 1-2x that
MIN_REQUEST_TIMEOUT = 1800.0


@dataclass
class RequestInfo:
    verb: str
    sr: ServedResource
    namespace: str | None
    name: str | None
    subresource: str


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


class _Accept:
    """What the Accept header asks for: a Table, PartialObjectMetadata (with the meta.k8s.io
    version), YAML, or plain JSON (the fallback for anything else, e.g. aggregated discovery)."""

    def __init__(self, header: str | None) -> None:
        self.table_version: str | None = None
        self.metadata_version: str | None = None
        self.yaml = False
        self.acceptable = not header
        for part in (header or "").split(","):
            fields = [f.strip() for f in part.split(";")]
            media, params = fields[0].lower(), dict(f.split("=", 1) for f in fields[1:] if "=" in f)
            if media in ("application/json", "*/*", "application/*", "application/yaml"):
                self.acceptable = True
                as_kind, version = params.get("as"), f"meta.k8s.io/{params.get('v', 'v1')}"
                if params.get("g") == "meta.k8s.io" and self.table_version is self.metadata_version is None:
                    if as_kind == "Table":
                        self.table_version = version
                    elif as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                        self.metadata_version = version
                if media == "application/yaml" and not params:
                    self.yaml = True
            elif media.startswith("application/vnd.kubernetes.protobuf"):
                continue
        if "application/json" in (header or "") or "*/*" in (header or ""):
            self.yaml = False


def _partial(obj: JSON, api_version: str) -> JSON:
    """The PartialObjectMetadata form of an object (what metadata-only informers ask for)."""
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": obj.get("metadata", {})}


#: exceptions that mean the client went away mid-connection, not that the server failed
_CLIENT_GONE = (ssl.SSLError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError, TimeoutError)


class _HTTPServer(ThreadingHTTPServer):
    """One port, both schemes: a connection whose first byte starts a TLS handshake is wrapped."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128
    owner: APIServer

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        owner = self.owner
        owner._track(request, add=True)
        try:
            ctx = owner._ssl_context
            if ctx is not None:
                try:
                    first = request.recv(1, socket.MSG_PEEK)
                    if first == b"\x16":  # TLS handshake record
                        request.settimeout(10)
                        tls = ctx.wrap_socket(request, server_side=True)
                        tls.settimeout(None)
                        owner._track(request, add=False)
                        request = tls
                        owner._track(request, add=True)
                except (OSError, ssl.SSLError):
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)
        finally:
            owner._track(request, add=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a client hanging up quietly; report any other failure as socketserver does.

        socketserver prints a traceback for every exception out of a request; the common one here
        is a client closing a keep-alive TLS connection (at shutdown, or when its pool drops it),
        which surfaces as an SSLError (e.g. TLSV1_ALERT_DECODE_ERROR) or a reset/broken pipe. That
        is normal client behaviour -- kube-apiserver does not log it either (net/http treats a
        read error on an idle connection as the end of that connection) -- so it goes to debug.
        """
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE):
            _log.debug("envtest client disconnected", client=str(client_address), error=repr(exc))
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rook-py-envtest"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _HTTPServer
    _info: RequestInfo | None = None   # the resource request being served (None: non-resource)
    _recorded = False                  # whether stats already counted this request

    # -- plumbing -----------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(self, code: int, body: bytes, content_type: str = "application/json",
              extra: tuple[tuple[str, str], ...] = ()) -> None:
        head = [f"HTTP/1.1 {code} {self.responses.get(code, ('',))[0]}",
                f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
                "Cache-Control: no-cache, private"]
        head += [f"{k}: {v}" for k, v in extra]
        head += [f"Warning: 299 - {json.dumps(w)}" for w in [*self._warnings, *admission.take_warnings()]]
        self._record(code)  # before answering: a client reading stats right after sees this request
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def _record(self, code: int) -> None:
        info = self._info
        if info is not None and not self._recorded:
            self._recorded = True
            # The name RBAC would see: the path's, or the one a list/watch pins by field selector.
            name = info.name or (selector_name(urlsplit(self.path).query) if info.verb in ("list", "watch") else "")
            # RequestInfo gives a Namespace object's own requests that namespace (requestinfo.go).
            namespace = info.namespace or (info.name if info.sr.resource == "namespaces" else "") or ""
            self.server.owner.stats.record(self.headers.get("User-Agent") or "", info.verb, info.sr.resource,
                                           info.subresource, code, group=info.sr.group, name=name,
                                           namespace=namespace)

    def _send_obj(self, code: int, obj: Any) -> None:
        if getattr(self, "_yaml", False):
            self._send(code, yaml.safe_dump(obj, sort_keys=False).encode(), "application/yaml")
        else:
            self._send(code, dumps(obj))

    def _send_error(self, err: errors.ApiError) -> None:
        extra: tuple[tuple[str, str], ...] = ()
        if err.retry_after is not None:
            extra = (("Retry-After", str(max(1, math.ceil(err.retry_after)))),)
        self._send(err.status_code, dumps(err.to_status()), extra=extra)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            remaining = min(length, 16 * MAX_REQUEST_BYTES)
            while remaining > 0:  # drain (bounded) so the client can read the answer
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
            raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {MAX_REQUEST_BYTES}")
        return self.rfile.read(length) if length > 0 else b""

    # -- dispatch -----------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        admission.take_warnings()  # nothing left over from this thread's previous request
        self._yaml = False
        self._info = None
        self._recorded = False
        self._warnings: list[str] = []
        self._problems = fieldvalidation.Problems()
        try:
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            query = parse_qs(url.query, keep_blank_values=True)
            body = self._read_body()
            if path in PUBLIC_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/")):
                if path == "/version":
                    self._send_obj(200, discovery.version())
                else:
                    self._send(200, b"ok", "text/plain; charset=utf-8")
                return
            if not owner._authenticated(self.headers.get("Authorization")):
                self._send_error(errors.Unauthorized("Unauthorized"))
                return
            if path.startswith("/envtest/v1/"):
                self._control(method, path, body)
                return
            if path.startswith("/openapi/"):
                self._openapi(method, path, query)
                return
            accept = _Accept(self.headers.get("Accept"))
            self._yaml = accept.yaml
            if not accept.acceptable:
                raise errors.NotAcceptable("only the following media types are accepted: application/json, "
                                           "application/yaml")
            parts = [p for p in path.split("/") if p]
            if not self._discovery(method, parts):
                self._info = self._request_info(method, parts, query)
                self._resource(self._info, query, body, accept)
        except errors.ApiError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # an emulator bug: answer 500 like a panic-recovering apiserver
            _log.exception("envtest request failed", path=self.path)
            self._send_error(errors.InternalError(f"Internal error occurred: {exc!r}"))

    def _discovery(self, method: str, parts: list[str]) -> bool:
        """Answer discovery and OpenAPI paths; False when the path is a resource path."""
        registry = self.server.owner.registry
        doc: JSON | None = None
        if parts == ["api"]:
            owner = self.server.owner
            doc = discovery.api_versions(f"{owner.host}:{owner.port}")
        elif parts == ["api", "v1"]:
            doc = discovery.resource_list(registry, "", "v1")
        elif parts == ["apis"]:
            doc = discovery.api_group_list(registry)
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(registry, parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.resource_list(registry, parts[1], parts[2])
        else:
            if not parts or parts[0] not in ("api", "apis"):
                raise errors.NotFound("the server could not find the requested resource")
            return False
        if method != "GET":
            raise errors.MethodNotAllowed("the server does not allow this method on the requested resource")
        if doc is None:
            raise errors.NotFound("the server could not find the requested resource")
        self._send_obj(200, doc)
        return True

    def _openapi(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        """``/openapi/v2`` (JSON, or gnostic protobuf when that is all the client accepts) and
        ``/openapi/v3`` (index, then one document per group-version), see openapi.py."""
        if method != "GET":
            raise errors.MethodNotAllowed("the server does not allow this method on the requested resource")
        docs = self.server.owner.openapi
        accept = (self.headers.get("Accept") or "").lower()
        if path == "/openapi/v2":
            if OPENAPI_V2_PROTOBUF in accept and "json" not in accept:
                self._send(200, openapi_v2_protobuf(docs.v2()), OPENAPI_V2_PROTOBUF_TYPE)
            else:
                self._send(200, docs.v2())
            return
        if path == "/openapi/v3":
            self._send(200, dumps(docs.v3_index()))
            return
        doc = docs.v3(path[len("/openapi/v3/"):]) if path.startswith("/openapi/v3/") else None
        if doc is None:
            raise errors.NotFound("the server could not find the requested resource")
        self._send(200, doc)

    def _request_info(self, method: str, parts: list[str], query: dict[str, list[str]]) -> RequestInfo:
        not_found = errors.NotFound("the server could not find the requested resource")
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) < 3:
                raise not_found
            group, version, rest = parts[1], parts[2], parts[3:]
        watch = _truthy(_first(query, "watch"))
        if rest and rest[0] == "watch":  # deprecated /watch/ prefix
            watch, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 2 and rest[0] == "namespaces" and (len(rest) == 2 or rest[2] in ("status", "finalize")):
            rest = ["namespaces", rest[1], *rest[2:]]
        elif len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise not_found
        sr = self.server.owner.registry.lookup(group, version, rest[0])
        if sr is None or (namespace is not None and not sr.namespaced):
            raise not_found
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and not sr.has_subresource(subresource):
            raise not_found
        if method == "GET":
            verb = "watch" if watch and not subresource else ("get" if name else "list")
        elif method == "POST":
            verb = "create"
            if name:
                raise errors.MethodNotAllowed("the server does not allow this method on the requested resource")
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        else:
            verb = "delete" if name else "deletecollection"
        if verb in ("update", "patch") and not name:
            raise errors.MethodNotAllowed("the server does not allow this method on the requested resource")
        if subresource == "finalize" and verb != "update":
            raise errors.MethodNotAllowed("the server does not allow this method on the requested resource")
        if verb not in sr.verbs and not subresource:
            raise errors.MethodNotAllowed("the server does not allow this method on the requested resource")
        return RequestInfo(verb, sr, namespace, name, subresource)

    # -- resources ----------------------------------------------------------------------------

    def _resource(self, info: RequestInfo, query: dict[str, list[str]], body: bytes, accept: _Accept) -> None:
        owner = self.server.owner
        delay = owner.faults.latency_for(info.verb, info.sr.resource, info.subresource)
        if delay:
            time.sleep(delay)
        injected = owner.faults.error_for(info.verb, info.sr.resource, info.subresource)
        if injected is not None:
            raise injected
        engine = owner.engine
        sr, ns, name, sub = info.sr, info.namespace, info.name, info.subresource or None
        dry_run = bool(query.get("dryRun"))
        manager = self._field_manager(info.verb, query) if info.verb in ("create", "update", "patch") else ""
        if info.verb == "get":
            assert name is not None
            obj = engine.get_scale(sr, ns, name) if sub == "scale" else engine.get(sr, ns, name)
            self._send_table_or_obj(200, sr, [obj], obj, accept, query, single=True)
        elif info.verb == "list":
            flt = make_filter(sr, ns, _first(query, "labelSelector"), _first(query, "fieldSelector"))
            limit_s = _first(query, "limit")
            limit = int(limit_s) if limit_s and limit_s.isdigit() and int(limit_s) > 0 else None
            rv, match = _first(query, "resourceVersion"), _first(query, "resourceVersionMatch")
            result = engine.list(sr, flt, limit=limit, continue_=_first(query, "continue"),
                                 exact_rv=rv if match == "Exact" else None,
                                 resource_version=rv, not_older_than=match == "NotOlderThan")
            self._send_table_or_obj(200, sr, result["items"], result, accept, query, single=False)
        elif info.verb == "watch":
            self._watch(sr, ns, name, query, accept)
        elif info.verb == "create":
            obj = self._json_body(body)
            self._validate_fields(sr, obj, self._field_validation("create", query), sub)
            obj = engine.create(sr, ns, obj, dry_run=dry_run, manager=manager)
            self._send_obj(201, obj)
        elif info.verb == "update":
            assert name is not None
            new = self._json_body(body)
            self._validate_fields(sr, new, self._field_validation("update", query), sub)
            obj, created = engine.update(sr, ns, name, new, subresource=sub, dry_run=dry_run, manager=manager)
            self._send_obj(201 if created else 200, obj)
        elif info.verb == "patch":
            assert name is not None
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            force = _first(query, "force")
            if content_type == APPLY_PATCH:
                self._apply(info, query, body, manager, dry_run)
                return
            if force is not None:
                raise errors.invalid("PatchOptions", "meta.k8s.io", "", [
                    forbidden("force", "may not be specified for non-apply patch")])
            patch_type = PATCH_TYPES.get(content_type)
            if patch_type is None:
                raise errors.UnsupportedMediaType(
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join([*PATCH_TYPES, APPLY_PATCH])}")
            patch = self._json_body(body, allow_list=True)
            # a JSON patch names paths, not fields: only its duplicates are checked
            self._validate_fields(sr, patch if patch_type != "json" else None,
                                  self._field_validation("patch", query), sub)
            self._send_obj(200, engine.patch(sr, ns, name, patch_type, patch, subresource=sub, dry_run=dry_run,
                                             manager=manager))
        elif info.verb == "delete":
            assert name is not None
            opts = self._delete_options(body, query)
            result, _ = engine.delete(sr, ns, name, propagation_policy=opts.get("propagationPolicy"),
                                      preconditions=opts.get("preconditions"),
                                      orphan_dependents=opts.get("orphanDependents"), dry_run=dry_run)
            code = 202 if opts.get("orphanDependents") is False and result.get("kind") != "Status" else 200
            self._send_obj(code, result)
        elif info.verb == "deletecollection":
            opts = self._delete_options(body, query)
            flt = make_filter(sr, ns, _first(query, "labelSelector"), _first(query, "fieldSelector"))
            self._send_obj(200, engine.delete_collection(sr, flt, propagation_policy=opts.get("propagationPolicy"),
                                                         dry_run=dry_run))

    def _field_manager(self, verb: str, query: dict[str, list[str]]) -> str:
        """The managedFields manager: ``?fieldManager=`` or the User-Agent's first token
        (managerOrUserAgent in apiserver/pkg/endpoints/handlers/rest.go). A bad parameter is
        422 on the verb's options kind, as ValidateCreateOptions & co. answer."""
        manager = _first(query, "fieldManager")
        if manager is None:
            return manager_from_user_agent(self.headers.get("User-Agent") or "")
        why = validate_manager(manager)
        if why is not None:
            options = {"create": "CreateOptions", "update": "UpdateOptions"}.get(verb, "PatchOptions")
            raise errors.invalid(options, "meta.k8s.io", "", [invalid_value("fieldManager", manager, why)])
        return manager

    def _apply(self, info: RequestInfo, query: dict[str, list[str]], body: bytes, manager: str,
               dry_run: bool) -> None:
        """Server-side apply (``application/apply-patch+yaml``, a YAML or JSON body): the
        fieldManager parameter is required, ``force`` takes fields from other managers; a
        missing object is created (201)."""
        assert info.name is not None
        if _first(query, "fieldManager") is None:
            raise errors.invalid("PatchOptions", "meta.k8s.io", "", [
                required("fieldManager", "Required value: is required for apply patch")])
        force_s = _first(query, "force")
        if force_s not in (None, "true", "false"):
            raise errors.BadRequest(f'invalid force value "{force_s}"')
        config = self._json_body(body)
        self._validate_fields(info.sr, config, self._field_validation("patch", query), info.subresource or None)
        obj, created = self.server.owner.engine.apply(info.sr, info.namespace, info.name, config, manager=manager,
                                                      force=force_s == "true", subresource=info.subresource or None,
                                                      dry_run=dry_run)
        self._send_obj(201 if created else 200, obj)

    @staticmethod
    def _field_validation(verb: str, query: dict[str, list[str]]) -> str:
        options = {"create": "CreateOptions", "update": "UpdateOptions"}.get(verb, "PatchOptions")
        return fieldvalidation.directive(_first(query, "fieldValidation"), options)

    def _json_body(self, body: bytes, allow_list: bool = False) -> Any:
        """Decode a request body by its Content-Type, as the handlers' input negotiation does:
        JSON and YAML (and patch documents) are read; protobuf only for the kinds protobuf.py
        knows; anything else is 415 UnsupportedMediaType, never a guess through the YAML parser
        (apiserver/pkg/endpoints/handlers/negotiation/negotiate.go NegotiateInputSerializer).
        Duplicate fields are noted in ``self._problems`` for field validation."""
        media = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media == PROTOBUF and not allow_list:
            try:  # kubectl's generators (create configmap/secret/namespace...) send protobuf
                return decode_object(body)
            except UnsupportedKind as exc:
                raise errors.UnsupportedMediaType(
                    f"{exc} - accepted media types include: application/json, application/yaml") from None
            except ProtobufError as exc:
                raise errors.BadRequest(f"the object provided is unrecognized: {exc}") from None
        if media not in TEXT_BODY_TYPES:
            raise errors.UnsupportedMediaType(_UNSUPPORTED_BODY)
        try:
            value, dups = fieldvalidation.loads_json(body) if body.strip() else (None, [])
            self._problems.duplicates = dups
        except ValueError:
            try:  # kubectl and humans sometimes send YAML
                value, dups = fieldvalidation.loads_yaml(body)
                self._problems.yaml_duplicates = dups
            except yaml.YAMLError as exc:
                raise errors.BadRequest(f"the body of the request could not be decoded: {exc}") from None
        if isinstance(value, dict) or (allow_list and isinstance(value, list)):
            return value
        raise errors.BadRequest("the body of the request could not be decoded as a JSON object")

    def _validate_fields(self, sr: ServedResource, obj: Any, directive: str, subresource: str | None) -> None:
        """Field validation of a decoded body (fieldvalidation.py): unknown fields are dropped
        (noted as problems), then Strict fails on any problem and Warn turns each into a
        warning header."""
        problems = self._problems
        definition = self.server.owner.openapi.definition_of(sr) if subresource != "scale" else None
        if definition is not None and isinstance(obj, dict):
            problems.unknown = fieldvalidation.strip_unknown(
                obj, {"$ref": f"#/definitions/{definition}"}, self.server.owner.openapi.definitions(), drop=True)
        if not problems or directive == fieldvalidation.IGNORE:
            return
        if directive == fieldvalidation.STRICT:
            raise fieldvalidation.strict_error(sr.kind, sr.version, problems)
        self._warnings.extend(problems.messages())

    def _delete_options(self, body: bytes, query: dict[str, list[str]]) -> JSON:
        opts: JSON = {}
        if body.strip():
            parsed = self._json_body(body)
            opts.update(parsed)
        if _first(query, "propagationPolicy"):
            opts["propagationPolicy"] = _first(query, "propagationPolicy")
        if _first(query, "orphanDependents") is not None:
            opts["orphanDependents"] = _truthy(_first(query, "orphanDependents"))
        return opts

    def _send_table_or_obj(self, code: int, sr: ServedResource, objs: list[JSON], obj: JSON, accept: _Accept,
                           query: dict[str, list[str]], *, single: bool) -> None:
        if accept.metadata_version is not None:
            if single:
                self._send_obj(code, _partial(obj, accept.metadata_version))
            else:
                self._send_obj(code, {"kind": "PartialObjectMetadataList", "apiVersion": accept.metadata_version,
                                      "metadata": obj["metadata"],
                                      "items": [_partial(o, accept.metadata_version) for o in objs]})
        elif accept.table_version is not None:
            # a single object's Table carries that object's resourceVersion: ConvertToTable
            # (apiserver/pkg/registry/rest/table.go) reads it through the object's accessor
            list_meta = ({"resourceVersion": obj["metadata"].get("resourceVersion", "")} if single
                         else dict(obj["metadata"]))
            self._send_obj(code, self._table(sr, objs, list_meta, accept, query))
        else:
            self._send_obj(code, obj)

    @staticmethod
    def _table(sr: ServedResource, objs: list[JSON], list_meta: JSON, accept: _Accept,
               query: dict[str, list[str]]) -> JSON:
        from .tables import to_table

        include = _first(query, "includeObject") or "Metadata"
        try:
            table = to_table(objs, sr.printer_columns, sr.resource, list_meta, include)
        except ValueError as exc:
            raise errors.BadRequest(str(exc)) from None
        table["apiVersion"] = accept.table_version
        return table

    def _json_line(self, obj: JSON) -> bytes:
        return dumps(obj) + b"\n"

    # -- watch --------------------------------------------------------------------------------

    def _client_gone(self) -> bool:
        """Whether the watch client hung up. A watch client sends nothing after its request, so a
        readable socket means end-of-stream (plain or TLS alike)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _watch(self, sr: ServedResource, namespace: str | None, name: str | None, query: dict[str, list[str]],
               accept: _Accept) -> None:
        owner = self.server.owner
        field_selector = _first(query, "fieldSelector")
        if name:  # the deprecated /watch/.../{name} form watches one object
            field_selector = ",".join(f for f in (field_selector, f"metadata.name={name}") if f)
        flt = make_filter(sr, namespace, _first(query, "labelSelector"), field_selector)
        bookmarks = _truthy(_first(query, "allowWatchBookmarks"))
        initial_events = _truthy(_first(query, "sendInitialEvents"))
        rv = _first(query, "resourceVersion")
        timeout_s = _first(query, "timeoutSeconds")
        try:
            timeout = float(timeout_s) if timeout_s else 0.0
        except ValueError:
            raise errors.BadRequest(f'invalid timeoutSeconds "{timeout_s}"') from None
        if timeout <= 0:  # unset (or 0): the apiserver picks 1-2x --min-request-timeout
            timeout = MIN_REQUEST_TIMEOUT * (1 + random.random())
        start = owner.engine.start_watch(sr, flt, "" if initial_events else rv)
        watcher = start.watcher
        stream = _WatchStream(self, owner, sr, flt, accept, query)
        self._record(200)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Cache-Control: no-cache, private\r\nTransfer-Encoding: chunked\r\n\r\n")
        healthy = True
        try:
            if start.expired is not None:
                self._chunk(self._json_line({"type": "ERROR", "object": start.expired.to_status()}))
            else:
                if start.initial:
                    self._chunk(b"".join(stream.frame(e) for e in start.initial))
                if initial_events and bookmarks:
                    self._chunk(stream.bookmark(initial_end=True))
                stream.run(watcher, timeout, bookmarks)
        except OSError:  # the client went away
            healthy = False
            self.close_connection = True
        except Exception:  # headers are out: a 500 answer is impossible, so cut the stream
            _log.exception("envtest watch failed", path=self.path)
            healthy = False
            self.close_connection = True
        finally:
            watcher.close()
        if healthy:
            try:
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True

    # -- control plane ------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> None:
        owner = self.server.owner
        parts = [p for p in path.split("/") if p][2:]
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            raise errors.BadRequest("control requests take a JSON body") from None
        for prefix, handler in owner._controls.items():
            if parts[: len(prefix)] == list(prefix):
                code, answer = handler(method, parts[len(prefix):], payload)
                self._send_obj(code, answer)
                return
        raise errors.NotFound(f"no control endpoint {path}")


class _WatchStream:
    """Turns store events into watch frames for one request (filters, conversion, Table)."""

    def __init__(self, handler: _Handler, owner: APIServer, sr: ServedResource, flt: Filter, accept: _Accept,
                 query: dict[str, list[str]]) -> None:
        self.handler = handler
        self.owner = owner
        self.sr = sr
        self.flt = flt
        self.accept = accept
        self.query = query

    def frame(self, event: Event) -> bytes:
        """The frame for ``event`` as this watcher must see it; b"" when filtered out."""
        etype = event.type
        if not self.flt.trivial:
            now_matches = self.flt.matches(self.sr, event.obj)
            before = event.prev is not None and self.flt.matches(self.sr, event.prev)
            if etype == "MODIFIED":
                if now_matches and not before:
                    etype = "ADDED"
                elif before and not now_matches:
                    etype = "DELETED"
                elif not now_matches:
                    return b""
            elif not now_matches:
                return b""
        obj = event.obj
        plain = etype == event.type and obj.get("apiVersion") == self.sr.api_version
        if plain and self.accept.table_version is None and self.accept.metadata_version is None:
            return event.line()
        out = Engine.out(self.sr, obj)
        if self.accept.metadata_version is not None:
            out = _partial(out, self.accept.metadata_version)
        elif self.accept.table_version is not None:
            out = _Handler._table(self.sr, [out], {"resourceVersion": out["metadata"].get("resourceVersion", "")},
                                  self.accept, self.query)
        return b'{"type":"' + etype.encode() + b'","object":' + dumps(out) + b"}\n"

    def bookmark(self, initial_end: bool = False) -> bytes:
        store = self.owner.store
        with store.lock:
            rv = store.rv
        meta: JSON = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.sr.kind, "apiVersion": self.sr.api_version, "metadata": meta}
        return b'{"type":"BOOKMARK","object":' + dumps(obj) + b"}\n"

    def run(self, watcher: Any, timeout: float, bookmarks: bool) -> None:
        owner = self.owner
        deadline = time.monotonic() + timeout
        interval = owner.bookmark_interval
        next_bookmark = time.monotonic() + interval
        q: queue.SimpleQueue[Event | None] = watcher.queue
        while True:
            now = time.monotonic()
            if now >= deadline or owner._stopping.is_set():
                return
            wait = min(deadline - now, IDLE_CHECK_INTERVAL)
            if bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            try:
                event = q.get(timeout=wait)
            except queue.Empty:
                if self.handler._client_gone():
                    return
                if bookmarks and time.monotonic() >= next_bookmark:
                    if owner.faults.stalled():
                        owner.faults.wait_while_stalled(owner._stopping)
                    frame = self._bookmark_if_idle(watcher)
                    if frame:
                        self.handler._chunk(frame)
                    next_bookmark = time.monotonic() + interval
                continue
            if event is None:
                return
            if owner.faults.stalled():
                owner.faults.wait_while_stalled(owner._stopping)
            frames = [self.frame(event)]
            # drain what is already queued into one chunk: fewer syscalls under fan-out
            for _ in range(255):
                try:
                    more = q.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    data = b"".join(frames)
                    if data:
                        self.handler._chunk(data)
                    return
                frames.append(self.frame(more))
            data = b"".join(frames)
            if data:
                self.handler._chunk(data)

    def _bookmark_if_idle(self, watcher: Any) -> bytes:
        """A bookmark at the store's rv, only if no event for this watcher is still queued.

        Checked under the store lock (events are queued under it), so every event up to the
        bookmarked resourceVersion has been written before the bookmark: resuming from it loses
        nothing.
        """
        with self.owner.store.lock:
            if not watcher.queue.empty():
                return b""
            rv = self.owner.store.rv
        obj = {"kind": self.sr.kind, "apiVersion": self.sr.api_version, "metadata": {"resourceVersion": str(rv)}}
        return b'{"type":"BOOKMARK","object":' + dumps(obj) + b"}\n"


class APIServer:
    """A Kubernetes API server emulator on 127.0.0.1. See docs/architecture.md (envtest).

    ``start()`` binds (port 0 picks a free port) and serves on background threads; ``stop()``
    ends every watch, closes every connection and joins the serving thread. A fresh server holds
    what a new cluster has: namespaces default, kube-system, kube-public, kube-node-lease and the
    ``kubernetes`` Service (10.96.0.1).

    ``tls`` (default True) adds HTTPS on the same port with a self-signed certificate, which the
    kubeconfig from ``write_kubeconfig`` names and trusts; ``fault_seed`` makes random error
    rates reproducible; ``managed_fields`` (default True) records metadata.managedFields on
    every write, as kube-apiserver does (False: objects never carry any).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 history_size: int = 10_000, bookmark_interval: float = 60.0, *,
                 fault_seed: int | None = None, tls: bool = True, managed_fields: bool = True) -> None:
        self.host = host
        self.port = port
        self.token = token or secrets.token_hex(16)
        self.bookmark_interval = bookmark_interval
        self.store = Store(history_size=history_size)
        self.registry = Registry(now=times.now)
        self.engine = AdmittingEngine(self.store, self.registry, managed_fields=managed_fields)
        self.openapi = self.engine.openapi
        self.local = LocalAPI(self.engine)
        self.faults = Faults(self.store, seed=fault_seed)
        self.stats = RequestStats()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._controls: dict[tuple[str, ...], ControlHandler] = {}
        cert = serving_cert() if tls else None
        #: PEM of the self-signed serving certificate (also its CA), None when serving HTTP only
        self.ca_data: bytes | None = cert.cert_pem if cert else None
        self.ca_file: str | None = cert.cert_file if cert else None
        self._ssl_context = cert.server_context() if cert else None
        self._register_builtin_controls()
        self._seed()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> APIServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"envtest-apiserver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        self.faults.reset()  # wakes stalled watches
        self.store.close_watchers()
        httpd.shutdown()
        httpd.server_close()
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self.local.close()

    def __enter__(self) -> APIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Plain-HTTP address (same port as ``https_url``): for raw HTTP clients and benchmarks."""
        return f"http://{self.host}:{self.port}"

    @property
    def https_url(self) -> str | None:
        """TLS address, verified by ``ca_data``; what the kubeconfig names (kubectl needs TLS to
        send the token). None when TLS is off or openssl is missing."""
        return f"https://{self.host}:{self.port}" if self._ssl_context is not None else None

    def write_kubeconfig(self, path: str, context: str = "envtest") -> str:
        """Write a kubeconfig (server URL, bearer token, current context) usable by kubectl and
        ``kubernetes.config.load_kube_config``; returns ``path``."""
        cluster: JSON = {"server": self.https_url or self.url}
        if self.ca_data is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_data).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                       "namespace": "default"}}],
            "current-context": context,
        }
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        # write-then-rename: a process polling for the file never reads half of it
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
        os.replace(tmp, path)
        return path

    def register_control(self, prefix: str, handler: ControlHandler) -> None:
        """Serve ``/envtest/v1/<prefix>/...``: ``handler(method, rest_of_path, json_body)`` returns
        ``(http_code, json_answer)``. Used by the cluster simulator for its pod hooks."""
        self._controls[tuple(p for p in prefix.split("/") if p)] = handler

    # -- internals ----------------------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _authenticated(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), self.token.encode())

    def _seed(self) -> None:
        """What a fresh cluster has: the system namespaces and the kubernetes Service."""
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.local.create("v1", "namespaces", {"metadata": {"name": ns}})
        self.local.create("v1", "services", {
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}})

    def _register_builtin_controls(self) -> None:
        def faults(method: str, rest: list[str], body: Any) -> tuple[int, Any]:
            if method != "POST" or len(rest) != 1:
                return 405, errors.MethodNotAllowed("use POST /envtest/v1/faults/<action>").to_status()
            action, scope = rest[0], {k: body.get(k) for k in ("verb", "resource", "subresource")}
            try:
                if action == "fail-next":
                    self.faults.fail_next(int(body.get("count", 1)), int(body.get("code", 500)), **scope,
                                          retry_after=body.get("retryAfterSeconds"), message=body.get("message"))
                elif action == "error-rates":
                    self.faults.set_error_rates(body.get("rates") or {}, **scope)
                elif action == "latency":
                    self.faults.set_latency(float(body.get("seconds", 0)), **scope)
                elif action == "close-watches":
                    return 200, {"closed": self.faults.close_watches()}
                elif action == "compact":
                    return 200, {"resourceVersion": str(self.faults.compact())}
                elif action == "stall-watches":
                    seconds = body.get("seconds")
                    self.faults.stall_watches(float(seconds) if seconds is not None else None)
                elif action == "reset":
                    self.faults.reset()
                else:
                    return 404, errors.NotFound(f"unknown fault action {action!r}").to_status()
            except (TypeError, ValueError) as exc:
                return 400, errors.BadRequest(str(exc)).to_status()
            return 200, {"ok": True}

        def stats(method: str, rest: list[str], body: Any) -> tuple[int, Any]:
            if method == "GET" and not rest:
                return 200, {"items": self.stats.snapshot()}
            if method == "POST" and rest == ["reset"]:
                self.stats.reset()
                return 200, {"ok": True}
            return 404, errors.NotFound("unknown stats endpoint").to_status()

        self.register_control("faults", faults)
        self.register_control("stats", stats)
