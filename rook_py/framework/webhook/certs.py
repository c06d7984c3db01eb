"""Serving certificates for the webhook server, from a directory or managed by the operator.

* ``CertDir``: ``tls.crt``/``tls.key`` in a directory (a mounted Secret written by cert-manager or
  by hand), re-read when either file changes (controller-runtime pkg/certwatcher); a change that
  does not parse keeps the previous pair and logs, so a half-written rotation never takes the
  server down.
* ``SelfManagedCerts``: the operator keeps a CA and a serving certificate for
  ``<service>.<namespace>.svc`` (and, out of cluster, the ``--webhook-url`` host) in one Secret,
  injects the CA bundle into its own webhook configurations and CRD conversion configs, and
  replaces the serving certificate once less than ``rotate_fraction`` of its lifetime is left
  (open-policy-agent/cert-controller, which kubebuilder projects use, does the same). Every
  replica runs it: creation is create-or-adopt (AlreadyExists -> use theirs), replacement is an
  update with the resourceVersion read (Conflict -> re-read, theirs wins), and a replica only
  replaces what it judges due, so replicas converge on one Secret instead of fighting.

Keys and certificates are made with the ``cryptography`` package (ECDSA P-256, SHA-256).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rook_py.framework.client import errors
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
log = get_logger(__name__)

CA_CERT_KEY, CA_KEY_KEY = "ca.crt", "ca.key"
TLS_CERT_KEY, TLS_KEY_KEY = "tls.crt", "tls.key"
_CLOCK_SKEW = dt.timedelta(minutes=5)


# -- making certificates ------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(common_name: str, valid_for: dt.timedelta, *, now: dt.datetime | None = None) -> KeyPair:
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW).not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_serving_cert(ca: KeyPair, hosts: Sequence[str], valid_for: dt.timedelta, *,
                      now: dt.datetime | None = None) -> KeyPair:
    """A server certificate for ``hosts`` (DNS names and IP addresses), signed by ``ca``."""
    if not hosts:
        raise ValueError("a serving certificate needs at least one host")
    now = now or _now()
    ca_cert = ca.certificate
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    not_after = min(now + valid_for, ca_cert.not_valid_after_utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def pem_certificates(bundle: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(bundle) if bundle.strip() else []


def server_context(pair: KeyPair) -> ssl.SSLContext:
    """A TLS server context serving ``pair`` (``load_cert_chain`` reads files only, so the
    PEMs pass through a private temporary directory that is removed at once)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="rook-webhook-") as tmp:
        cert_file, key_file = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, data in ((cert_file, pair.cert_pem), (key_file, pair.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        context.load_cert_chain(cert_file, key_file)
    return context


# -- certificate sources ------------------------------------------------------------------------

class CertSource:
    """What the server asks for each new connection: the current context (or None: no cert)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pair: KeyPair | None = None
        self._context: ssl.SSLContext | None = None

    def _set(self, pair: KeyPair) -> None:
        context = server_context(pair)
        with self._lock:
            self._pair, self._context = pair, context

    def context(self) -> ssl.SSLContext | None:
        self.refresh()
        with self._lock:
            return self._context

    def refresh(self) -> None:
        """Pick up a changed certificate (cheap; called per connection)."""

    def current(self) -> KeyPair | None:
        with self._lock:
            return self._pair

    def problem(self) -> str | None:
        """Why the server cannot serve now (no certificate, not yet or no longer valid)."""
        self.refresh()
        pair = self.current()
        if pair is None:
            return "no serving certificate yet"
        now = _now()
        if now < pair.not_before():
            return f"serving certificate not valid before {pair.not_before().isoformat()}"
        if now >= pair.not_after():
            return f"serving certificate expired at {pair.not_after().isoformat()}"
        return None


class StaticCert(CertSource):
    """A fixed pair (tests, benchmarks)."""

    def __init__(self, pair: KeyPair) -> None:
        super().__init__()
        self._set(pair)


class CertDir(CertSource):
    """``tls.crt``/``tls.key`` in ``path``, re-read when their size or mtime changes (checked at
    most every ``poll`` seconds, on the connection that finds the check due)."""

    def __init__(self, path: str, cert_name: str = TLS_CERT_KEY, key_name: str = TLS_KEY_KEY,
                 *, poll: float = 1.0) -> None:
        super().__init__()
        self.cert_file = os.path.join(path, cert_name)
        self.key_file = os.path.join(path, key_name)
        self.poll = poll
        self._stamp: tuple[Any, ...] | None = None
        self._checked = float("-inf")
        self._reload_lock = threading.Lock()
        self.refresh(force=True)

    def _files_stamp(self) -> tuple[Any, ...] | None:
        try:
            a, b = os.stat(self.cert_file), os.stat(self.key_file)
        except OSError:
            return None
        return (a.st_mtime_ns, a.st_size, a.st_ino, b.st_mtime_ns, b.st_size, b.st_ino)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self.poll:
            return
        with self._reload_lock:
            self._checked = now
            stamp = self._files_stamp()
            if stamp is None or stamp == self._stamp:
                return
            try:
                with open(self.cert_file, "rb") as c, open(self.key_file, "rb") as k:
                    pair = KeyPair(c.read(), k.read())
                self._set(pair)
            except (OSError, ValueError, ssl.SSLError) as err:
                log.warning("webhook certificate files unusable; keeping the previous pair",
                            cert=self.cert_file, error=str(err))
                return
            self._stamp = stamp
            log.info("webhook certificate loaded", cert=self.cert_file,
                     not_after=pair.not_after().isoformat())


@dataclass
class CertOptions:
    """Where the self-managed certificate lives and what it covers."""

    namespace: str
    secret_name: str
    service_name: str
    #: Validating/MutatingWebhookConfigurations whose every webhook gets the CA bundle.
    validating_configurations: Sequence[str] = ()
    mutating_configurations: Sequence[str] = ()
    #: CRDs (by name) whose conversion webhook gets the CA bundle.
    crds: Sequence[str] = ()
    #: Out of cluster: point the configurations at this base URL instead of the Service.
    webhook_url: str | None = None
    ca_validity: dt.timedelta = dt.timedelta(days=3650)
    serving_validity: dt.timedelta = dt.timedelta(days=365)
    #: Replace a certificate once less than this fraction of its lifetime is left.
    rotate_fraction: float = 1 / 3
    #: How often the Secret is re-read (other replicas' rotations) and injection re-checked.
    resync: float = 60.0

    def hosts(self) -> list[str]:
        svc = f"{self.service_name}.{self.namespace}"
        hosts = [f"{svc}.svc", svc, f"{svc}.svc.cluster.local"]
        if self.webhook_url:
            host = urlsplit(self.webhook_url).hostname
            if host and host not in hosts:
                hosts.insert(0, host)
        return hosts


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _secret_bytes(secret: JSON, key: str) -> bytes:
    raw = (secret.get("data") or {}).get(key)
    return base64.b64decode(raw) if raw else b""


def _due(pair: KeyPair, fraction: float, now: dt.datetime) -> bool:
    return now >= _due_at(pair, fraction)


def _due_at(pair: KeyPair, fraction: float) -> dt.datetime:
    """When ``fraction`` of the certificate's life is left (its life counted from issue, not
    from the back-dated notBefore that absorbs clock skew)."""
    issued = min(pair.not_before() + _CLOCK_SKEW, pair.not_after())
    return pair.not_after() - (pair.not_after() - issued) * fraction


class SelfManagedCerts(CertSource):
    """See the module docstring. A runnable for every replica (``need_leader_election`` False)."""

    def __init__(self, client: Any, options: CertOptions, *,
                 clock: Callable[[], dt.datetime] = _now) -> None:
        super().__init__()
        self.client = client
        self.options = options
        self.clock = clock
        self.ca_bundle: bytes = b""
        self.injected = threading.Event()

    def need_leader_election(self) -> bool:
        return False

    # The Secret ---------------------------------------------------------------------------------

    def _parse(self, secret: JSON) -> tuple[KeyPair, KeyPair, bytes] | None:
        try:
            ca = KeyPair(_secret_bytes(secret, CA_CERT_KEY), _secret_bytes(secret, CA_KEY_KEY))
            serving = KeyPair(_secret_bytes(secret, TLS_CERT_KEY), _secret_bytes(secret, TLS_KEY_KEY))
            bundle = pem_certificates(ca.cert_pem)
            ca = KeyPair(bundle[0].public_bytes(serialization.Encoding.PEM), ca.key_pem)
            serving.certificate  # noqa: B018 - parses, raises when broken
            serialization.load_pem_private_key(serving.key_pem, password=None)
        except (ValueError, IndexError, TypeError):
            return None
        return ca, serving, _secret_bytes(secret, CA_CERT_KEY)

    def _needs_new_serving(self, ca: KeyPair, serving: KeyPair, now: dt.datetime) -> bool:
        cert = serving.certificate
        if cert.issuer != ca.certificate.subject or _due(serving, self.options.rotate_fraction, now):
            return True
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return True
        have = {str(n) for n in names.get_values_for_type(x509.DNSName)}
        have |= {str(a) for a in names.get_values_for_type(x509.IPAddress)}
        return not set(self.options.hosts()) <= have

    def _desired_data(self, parsed: tuple[KeyPair, KeyPair, bytes] | None) -> JSON | None:
        """The Secret data to write, or None when the current one is fine."""
        opts, now = self.options, self.clock()
        if parsed is None:
            ca = make_ca(f"{opts.service_name}-ca", opts.ca_validity, now=now)
            bundle = ca.cert_pem
        else:
            ca, serving, bundle = parsed
            if _due(ca, opts.rotate_fraction, now):
                old_ca = ca
                ca = make_ca(f"{opts.service_name}-ca", opts.ca_validity, now=now)
                # The old CA stays in the bundle while it lives: replicas still serving its
                # certificate keep being trusted until they pick up the new Secret.
                bundle = ca.cert_pem + (old_ca.cert_pem if old_ca.not_after() > now else b"")
            elif not self._needs_new_serving(ca, serving, now):
                return None
        serving = make_serving_cert(ca, opts.hosts(), opts.serving_validity, now=now)
        return {CA_CERT_KEY: _b64(bundle), CA_KEY_KEY: _b64(ca.key_pem),
                TLS_CERT_KEY: _b64(serving.cert_pem), TLS_KEY_KEY: _b64(serving.key_pem)}

    def reconcile(self) -> None:
        """Create, adopt or rotate the Secret; serve its pair; inject its CA bundle."""
        opts = self.options
        for _ in range(5):
            try:
                secret: JSON | None = self.client.get("v1", "Secret", opts.secret_name, opts.namespace)
            except errors.NotFound:
                secret = None
            parsed = self._parse(secret) if secret is not None else None
            data = self._desired_data(parsed)
            if data is None:
                assert parsed is not None
                break
            try:
                if secret is None:
                    self.client.create({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                                        "metadata": {"name": opts.secret_name, "namespace": opts.namespace,
                                                     "labels": {"app.kubernetes.io/component": "webhook"}},
                                        "data": data})
                    log.info("webhook certificate Secret created", secret=opts.secret_name)
                else:
                    updated = {**secret, "data": data}
                    self.client.update(updated)
                    log.info("webhook serving certificate rotated", secret=opts.secret_name)
            except (errors.AlreadyExists, errors.Conflict):
                continue  # another replica wrote first: read and use theirs
        else:
            raise RuntimeError(f"Secret {opts.namespace}/{opts.secret_name} kept changing under us")
        _, serving, bundle = parsed
        if self.current() != serving:
            self._set(serving)
            log.info("webhook serving certificate loaded", not_after=serving.not_after().isoformat())
        self.ca_bundle = bundle
        self.inject(bundle)
        self.injected.set()

    def next_check(self) -> float:
        """Seconds until the serving certificate is due (capped by ``resync``)."""
        pair = self.current()
        if pair is None:
            return 1.0
        due = _due_at(pair, self.options.rotate_fraction)
        return max(0.05, min(self.options.resync, (due - self.clock()).total_seconds()))

    # Injection ----------------------------------------------------------------------------------

    def _client_config(self, current: JSON, bundle: str) -> JSON:
        config = dict(current)
        config["caBundle"] = bundle
        if self.options.webhook_url:
            path = (current.get("service") or {}).get("path") or urlsplit(
                current.get("url") or "").path or ""
            config.pop("service", None)
            config["url"] = self.options.webhook_url.rstrip("/") + path
        return config

    def inject(self, bundle: bytes) -> None:
        encoded = _b64(bundle)
        kinds = [("ValidatingWebhookConfiguration", n) for n in self.options.validating_configurations]
        kinds += [("MutatingWebhookConfiguration", n) for n in self.options.mutating_configurations]
        for kind, name in kinds:
            self._update(("admissionregistration.k8s.io/v1", kind, name),
                         lambda obj: self._set_hooks(obj, encoded))
        for name in self.options.crds:
            self._update(("apiextensions.k8s.io/v1", "CustomResourceDefinition", name),
                         lambda obj: self._set_conversion(obj, encoded))

    def _set_hooks(self, configuration: JSON, bundle: str) -> None:
        for hook in configuration.get("webhooks") or []:
            hook["clientConfig"] = self._client_config(hook.get("clientConfig") or {}, bundle)

    def _set_conversion(self, crd: JSON, bundle: str) -> None:
        conversion = (crd.get("spec") or {}).get("conversion") or {}
        webhook = conversion.get("webhook")
        if conversion.get("strategy") == "Webhook" and isinstance(webhook, dict):
            webhook["clientConfig"] = self._client_config(webhook.get("clientConfig") or {}, bundle)

    def _update(self, ref: tuple[str, str, str], mutate: Callable[[JSON], object]) -> None:
        api_version, kind, name = ref
        for _ in range(5):
            try:
                live = self.client.get(api_version, kind, name)
            except errors.NotFound:
                log.warning("cannot inject the webhook CA bundle: object not found", kind=kind, name=name)
                return
            desired = copy.deepcopy(live)
            mutate(desired)
            if desired == live:
                return
            try:
                self.client.update(desired)
                log.info("webhook CA bundle injected", kind=kind, name=name)
                return
            except errors.Conflict:
                continue
        raise RuntimeError(f"{kind} {name} kept changing while injecting the CA bundle")

    # Runnable -----------------------------------------------------------------------------------

    def start(self, stop: threading.Event) -> None:
        delay = 0.0
        while not stop.wait(delay):
            try:
                self.reconcile()
                delay = self.next_check()
            except (errors.ApiError, RuntimeError) as err:
                log.warning("webhook certificate upkeep failed; retrying", error=str(err))
                delay = 1.0
