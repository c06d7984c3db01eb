"""A real control plane for envtest: etcd and kube-apiserver binaries on 127.0.0.1.

Patterned on controller-runtime's pkg/internal/testing/controlplane (apiserver.go, etcd.go, plane.go)
and its process helpers: find binaries through ``KUBEBUILDER_ASSETS``, pick free ports, give etcd a
temporary data dir, give kube-apiserver a freshly generated serving certificate (signed by a
throw-away CA, so clients verify TLS for real), a service-account signing key pair, and a static
bearer token; wait for health endpoints; stop with SIGTERM, then SIGKILL after a timeout.

Differences from controller-runtime, on purpose: authentication is a static token file rather than a
generated client certificate (the emulator uses a bearer token too, so one kubeconfig shape serves
both back ends), and authorization is AlwaysAllow (no RBAC bootstrap to wait for). Certificates are
made with the ``openssl`` command-line tool because the ``cryptography`` package is not a dependency.

Faults (what the emulator's ``Faults`` do, done to a real control plane): kube-apiserver can be
killed or stopped and started again on the same etcd, port, certificates and token
(``kill_apiserver``/``stop_apiserver``/``start_apiserver``), frozen and thawed with
SIGSTOP/SIGCONT (``freeze_apiserver``/``thaw_apiserver``: the kernel still accepts connections,
so clients hang rather than being refused), etcd's revision moved on (``etcd_put``) and its
history compacted (``compact_etcd``). With
``audit=True`` kube-apiserver writes an audit log (Metadata level, one JSON event per line) that
``audit_events()`` reads: the server's own record of who sent which request when.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

ASSETS_ENV = "KUBEBUILDER_ASSETS"
ETCD = "etcd"
KUBE_APISERVER = "kube-apiserver"


class ControlPlaneError(RuntimeError):
    """A binary is missing, failed to start, or did not become healthy in time."""


@dataclass(frozen=True)
class Binaries:
    etcd: str
    kube_apiserver: str


def find_binaries(environ: Mapping[str, str] | None = None) -> Binaries | None:
    """The etcd and kube-apiserver in ``$KUBEBUILDER_ASSETS``, or None when it does not hold both."""
    env = os.environ if environ is None else environ
    folder = env.get(ASSETS_ENV)
    if not folder:
        return None
    etcd, apiserver = Path(folder) / ETCD, Path(folder) / KUBE_APISERVER
    if all(p.is_file() and os.access(p, os.X_OK) for p in (etcd, apiserver)):
        return Binaries(str(etcd), str(apiserver))
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free now (addr.Suggest upstream; the same small race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --- certificates ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Certificates:
    """Files for kube-apiserver's TLS serving and service-account token signing."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_private_key: Path
    sa_public_key: Path

    @property
    def ca_data(self) -> bytes:
        return self.ca_cert.read_bytes()


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ControlPlaneError("the openssl command is needed to generate the control plane's certificates")
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def generate_certificates(directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> Certificates:
    """A throw-away CA, a serving certificate for ``hosts`` signed by it, and an RSA key pair for
    service-account tokens (upstream's certs.NewTinyCA / NewServingCert, via the openssl CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    days = "365"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", days, "-subj", "/CN=envtest-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out", "apiserver.csr",
             "-subj", "/CN=kube-apiserver", cwd=directory)
    san = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)
    (directory / "serving.ext").write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "apiserver.crt", "-days", days, "-extfile", "serving.ext", cwd=directory)
    _openssl("genrsa", "-out", "sa-signer.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa-signer.key", "-pubout", "-out", "sa-signer.pub", cwd=directory)
    for private in ("ca.key", "apiserver.key", "sa-signer.key"):
        (directory / private).chmod(0o600)
    return Certificates(directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key",
                        directory / "sa-signer.key", directory / "sa-signer.pub")


_SHARED_LOCK = threading.Lock()
_SHARED: Certificates | None = None


def localhost_certificates() -> Certificates:
    """One set of certificates for 127.0.0.1/localhost per process, generated on first use.

    Key generation costs a few hundred milliseconds; servers started per test (the emulator when it
    serves TLS) share these. The files live in a temp dir removed when the process exits.
    """
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None or not _SHARED.ca_cert.exists():
            directory = Path(tempfile.mkdtemp(prefix="rook-envtest-pki-"))
            atexit.register(shutil.rmtree, directory, True)
            _SHARED = generate_certificates(directory)
        return _SHARED


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


# --- processes ------------------------------------------------------------------------------------

@dataclass
class Process:
    """One child process with a health URL (process.State upstream)."""

    name: str
    path: str
    args: list[str]
    health_url: str
    log_path: Path
    start_timeout: float = 60.0
    stop_timeout: float = 20.0
    ssl_context: ssl.SSLContext | None = None
    headers: dict[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        # Appended: a restarted process keeps the earlier runs' log above its own.
        self._log = self.log_path.open("ab")
        # A new session, so a signal meant for the test runner's group does not reach the child first.
        self._proc = subprocess.Popen([self.path, *self.args], stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ControlPlaneError(f"{self.name} exited with {self._proc.returncode} before becoming "
                                        f"healthy; log: {self._tail()}")
            ok, last = self._healthy()
            if ok:
                return
            time.sleep(0.1)
        self.stop()
        raise ControlPlaneError(f"{self.name} not healthy at {self.health_url} within {self.start_timeout}s "
                                f"({last}); log: {self._tail()}")

    def _healthy(self) -> tuple[bool, str]:
        request = urllib.request.Request(self.health_url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=2, context=self.ssl_context) as response:
                return response.status == 200, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code}"
        except (OSError, ssl.SSLError) as exc:
            return False, str(exc)

    def _tail(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the running process (SIGSTOP/SIGCONT freeze and thaw it)."""
        if self._proc is None or self._proc.poll() is not None:
            raise ControlPlaneError(f"{self.name} is not running")
        self._proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would end it; ``start()`` runs it again."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a frozen process would not act on SIGTERM
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def _supports_flag(path: str, flag: str) -> bool:
    """process.CheckFlag upstream: look for ``--flag`` in the binary's --help output."""
    try:
        result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return f"--{flag}" in result.stdout + result.stderr


def etcd_args(*, data_dir: Path, client_port: int, peer_port: int, unsafe_no_fsync: bool) -> list[str]:
    client = f"http://127.0.0.1:{client_port}"
    args = [
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
    ]
    if unsafe_no_fsync:
        args.append("--unsafe-no-fsync=true")  # etcd >= 3.5: tests do not need durability
    return args


def apiserver_args(*, etcd_url: str, port: int, cert_dir: Path, certs: Certificates, token_file: Path) -> list[str]:
    issuer = f"https://127.0.0.1:{port}/"
    return [
        f"--etcd-servers={etcd_url}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={certs.serving_cert}",
        f"--tls-private-key-file={certs.serving_key}",
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        # No controller-manager creates the default ServiceAccount, so the admission plugin that
        # requires it would reject every pod (same choice as controller-runtime).
        "--disable-admission-plugins=ServiceAccount",
        "--authorization-mode=AlwaysAllow",
        f"--token-auth-file={token_file}",
        f"--service-account-issuer={issuer}",
        f"--service-account-key-file={certs.sa_public_key}",
        f"--service-account-signing-key-file={certs.sa_private_key}",
    ]


class RealControlPlane:
    """etcd + kube-apiserver in a temp dir; ``start()`` returns once /readyz answers 200 with the token."""

    def __init__(self, binaries: Binaries, *, start_timeout: float = 60.0, stop_timeout: float = 20.0,
                 token: str | None = None, certificates: Certificates | None = None,
                 audit: bool = False, extra_apiserver_args: Sequence[str] = ()) -> None:
        """``certificates`` defaults to the per-process ``localhost_certificates()`` (generating keys
        costs more than starting the processes); pass ``generate_certificates(dir)`` for fresh ones.
        ``audit`` turns kube-apiserver's audit log on; ``extra_apiserver_args`` are appended to its
        command line (e.g. ``--watch-cache=false``)."""
        self.binaries = binaries
        self.audit = audit
        self.extra_apiserver_args = list(extra_apiserver_args)
        self._given_certs = certificates
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.token = token or secrets.token_hex(24)
        self.dir: Path | None = None
        self.etcd: Process | None = None
        self.apiserver: Process | None = None
        self.certs: Certificates | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> RealControlPlane:
        self.dir = Path(tempfile.mkdtemp(prefix="rook-envtest-real-"))
        # The children run in their own sessions (a Ctrl-C aimed at the test runner must not kill
        # them mid-test), so make sure an interpreter exit without stop() still ends them.
        atexit.register(self.stop)
        try:
            self._start_etcd()
            self._start_apiserver()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_etcd(self) -> None:
        assert self.dir is not None
        data_dir = self.dir / "etcd-data"
        data_dir.mkdir()
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        self.etcd = Process(
            ETCD, self.binaries.etcd,
            etcd_args(data_dir=data_dir, client_port=client_port, peer_port=peer_port,
                      unsafe_no_fsync=_supports_flag(self.binaries.etcd, "unsafe-no-fsync")),
            health_url=f"{self.etcd_url}/health", log_path=self.dir / "etcd.log",
            start_timeout=self.start_timeout, stop_timeout=self.stop_timeout)
        self.etcd.start()

    def _start_apiserver(self) -> None:
        assert self.dir is not None
        cert_dir = self.dir / "pki"  # kube-apiserver's --cert-dir (it may write self-signed certs there)
        cert_dir.mkdir()
        self.certs = self._given_certs or localhost_certificates()
        token_file = self.dir / "tokens.csv"
        # token,user,uid,"groups": system:masters makes the envtest user a cluster admin.
        token_file.write_text(f'{self.token},envtest-admin,envtest-admin,"system:masters"\n')
        token_file.chmod(0o600)
        self.port = free_port()
        context = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        extra = list(self.extra_apiserver_args)
        if self.audit:
            policy = self.dir / "audit-policy.yaml"
            # Metadata for every request, one event when the response is complete: who (user,
            # user agent), what (verb, object), when, and the answer's code.
            policy.write_text(yaml.safe_dump({
                "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                "omitStages": ["RequestReceived"], "rules": [{"level": "Metadata"}]}))
            extra += [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log_path}",
                      "--audit-log-mode=blocking", "--audit-log-format=json"]
        self.apiserver = Process(
            KUBE_APISERVER, self.binaries.kube_apiserver,
            apiserver_args(etcd_url=self.etcd_url, port=self.port, cert_dir=cert_dir, certs=self.certs,
                           token_file=token_file) + extra,
            health_url=f"{self.url}/readyz", log_path=self.dir / "kube-apiserver.log",
            start_timeout=self.start_timeout, stop_timeout=self.stop_timeout, ssl_context=context,
            headers={"Authorization": f"Bearer {self.token}"})
        self.apiserver.start()

    # -- faults --------------------------------------------------------------------------------------

    def _apiserver_process(self) -> Process:
        if self.apiserver is None:
            raise ControlPlaneError("the control plane is not started")
        return self.apiserver

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver (etcd keeps running); ``start_apiserver`` brings it back."""
        self._apiserver_process().kill()

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver gracefully (SIGTERM: it drains, then exits)."""
        self._apiserver_process().stop()

    def start_apiserver(self) -> None:
        """Start a stopped kube-apiserver again on the same etcd, port, certificates and token;
        returns once /readyz answers 200 (its watch cache then starts at etcd's current revision,
        so older resourceVersions get 410)."""
        process = self._apiserver_process()
        if process.running():
            raise ControlPlaneError("kube-apiserver is already running")
        process.start()

    def freeze_apiserver(self) -> None:
        """SIGSTOP kube-apiserver: connections are still accepted by the kernel, nothing answers."""
        self._apiserver_process().signal(signal.SIGSTOP)

    def thaw_apiserver(self) -> None:
        self._apiserver_process().signal(signal.SIGCONT)

    def etcd_revision(self) -> int:
        """etcd's current revision (the newest resourceVersion it has handed out)."""
        return int(self._etcd_call("/v3/maintenance/status", {})["header"]["revision"])

    def etcd_put(self, key: str, value: str) -> int:
        """Write ``key`` straight into etcd (outside kube-apiserver's ``/registry`` prefix, so no
        resource changes); returns the new revision. Stands for the writes other API servers or
        clients make during an outage: a restarted kube-apiserver's watch caches then start
        past every resourceVersion its clients hold, so each of their watches resumes with 410."""
        import base64

        if key.startswith("/registry"):
            raise ValueError("etcd_put refuses keys under /registry: they are kube-apiserver's")
        answer = self._etcd_call("/v3/kv/put", {
            "key": base64.b64encode(key.encode()).decode(),
            "value": base64.b64encode(value.encode()).decode()})
        return int(answer["header"]["revision"])

    def compact_etcd(self, revision: int | None = None) -> int:
        """Compact etcd's history up to ``revision`` (default: the current one), as kube-apiserver's
        own compactor does every --etcd-compaction-interval; returns the revision compacted to."""
        target = self.etcd_revision() if revision is None else revision
        self._etcd_call("/v3/kv/compaction", {"revision": str(target), "physical": True})
        return target

    def _etcd_call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """etcd's v3 JSON gateway (grpc-gateway), enough for status and compaction."""
        request = urllib.request.Request(self.etcd_url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise ControlPlaneError(f"etcd {path}: {exc}") from exc
        return answer

    @property
    def audit_log_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "audit.log"

    def audit_events(self) -> list[dict[str, Any]]:
        """Every audit event written so far (needs ``audit=True``), oldest first. A line still
        being written (no newline yet) is left for the next call."""
        if not self.audit:
            raise ControlPlaneError("the audit log is off; start the control plane with audit=True")
        try:
            text = self.audit_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines(keepends=True)
                if line.endswith("\n") and line.strip()]

    def kubeconfig(self) -> dict[str, object]:
        """A kubeconfig dict with the server's CA inline and the static token."""
        import base64

        assert self.certs is not None
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "envtest", "cluster": {
                "server": self.url,
                "certificate-authority-data": base64.b64encode(self.certs.ca_data).decode()}}],
            "users": [{"name": "envtest-admin", "user": {"token": self.token}}],
            "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "envtest-admin"}}],
            "current-context": "envtest",
        }

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        target.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        target.chmod(0o600)

    def stop(self) -> None:
        """Stop kube-apiserver first (it would log etcd errors otherwise), then etcd; remove the dir."""
        atexit.unregister(self.stop)
        for proc in (self.apiserver, self.etcd):
            if proc is not None:
                proc.stop()
        if self.dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.dir)
            self.dir = None
