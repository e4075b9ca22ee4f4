"""hopsworks_wire: a wire-level fake of a Hopsworks 5.2 cluster, for the hopsworks backend's tests.

The REAL hopsworks SDK (hopsworks / hopsworks_common / hsfs / hsml 5.2.1) runs
unpatched down to these seams, and only these are replaced:

1. HTTP transport: ``requests.adapters.HTTPAdapter.send`` (the adapter the
   SDK's ``requests.Session`` hands every prepared request to, from
   ``Client._send_request``).  Requests for the fake host are answered by the
   fake REST server; any other host goes to the original adapter.
2. Kafka: ``confluent_kafka.Producer`` / ``confluent_kafka.Consumer`` (and the
   names ``hsfs.core.kafka_engine`` imported from it).
3. Arrow Flight: ``pyarrow.flight.FlightClient`` (the SDK's
   ``hsfs/core/arrow_flight_client.py`` constructs it through the module
   attribute) and ``pyarrow.flight.FlightCallOptions`` (a real subclass that
   remembers its headers). Queries run with DuckDB over the offline tables.
4. ``time.sleep`` is made instant (optional, ``instant_sleep=True``) so the
   SDK's polling loops do not wait; requested sleeps are recorded.

Jobs are faked at their REST calls: an execution finishes after
``polls_to_finish`` GETs; the materialization job of a stream feature group
then decodes the group's Kafka records, upserts them into the offline table
and, when the group's statistics are enabled, computes them (the step a hosted
user saw fail; ``statistics_config=False`` skips it, as on a cluster).

The response shapes come from the SDK's own unit-test fixtures
(logicalclocks/hopsworks-api, python/tests/fixtures), checked against the
5.2.1 source. Where the server renames a column, the fake does too: a primary
key a feature view did not select comes back under its fully qualified name
``<project>_<group>_<version>_<key>``. A login writes real certificate files
(JKS key stores the SDK's own parser reads, PEM files), and the Kafka and
Flight seams open and check the files the SDK hands them, so a process whose
certificates were deleted fails there as it would on a cluster.

The fake is strict: a REST call no route matches answers 404 JSON (errorCode
999999, "FakeHopsworks does not implement ...") and is recorded in
``fake.unhandled``; so does a feature-group join. It holds what this project
uses: login, feature groups (stream, HUDI), feature views and in-memory
training data, the model registry, the dataset API, jobs and executions.

Everything the fake cluster knows lives in a state directory (JSON +
parquet + plain files), guarded by an ``fcntl`` lock, so several processes
(each with its own FakeHopsworks on the same directory) see one cluster; the
project's name is the cluster's, read from that state, and its id is random
(the SDK writes Kafka PEM files to /tmp/kafka_sc_<project id>_..., shared by
every process of a machine).

Usage (see helpers/wire.py)::

    with FakeHopsworks(folder, project="demo") as fake:
        project = hopsworks.login(host=fake.host, port=443, project="demo",
                                  api_key_value=fake.api_key, cert_folder=...)
        ...
        assert fake.jobs_started_per_group() == {"iris_1": 1}

or ``FakeHopsworks.from_env()``, which reads ``HOPSWORKS_WIRE_STATE``
(what helpers/wire_autostart/sitecustomize.py does in every child process).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import email.parser
import email.policy
import fcntl
import hashlib
import hmac
import io
import json
import os
import re
import struct
import threading
import time
import traceback
import urllib.parse

# ---------------------------------------------------------------------------
# Certificates (throwaway PKI) and the JKS writer
# ---------------------------------------------------------------------------
# The JKS writer is the inverse of the reader in hopsworks_common/client/base.py
# (`Client._load_jks` / `_decrypt_jks_key`): Sun "JKS" v2, private key protected
# with the Sun key protector (OID 1.3.6.1.4.1.42.2.17.1.1: salt(20) | data XOR
# SHA1 keystream | SHA1(pw+plain)), trailing store digest
# SHA1(utf16be(pw) + b"Mighty Aphrodite" + body).

_SUN_JKS_KEY_PROTECTOR_OID = bytes.fromhex("060a2b060104012a02110101")


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(content)) + content


def _jks_protect_key(pkcs8_der: bytes, password: str) -> bytes:
    pw = password.encode("utf-16-be")
    salt = os.urandom(20)
    out = bytearray(len(pkcs8_der))
    cur = salt
    for i in range(0, len(pkcs8_der), 20):
        cur = hashlib.sha1(pw + cur).digest()
        for j in range(min(20, len(pkcs8_der) - i)):
            out[i + j] = pkcs8_der[i + j] ^ cur[j]
    check = hashlib.sha1(pw + pkcs8_der).digest()
    alg = _der(0x30, _SUN_JKS_KEY_PROTECTOR_OID + b"\x05\x00")
    return _der(0x30, alg + _der(0x04, salt + bytes(out) + check))


def _java_utf(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def write_jks(password: str, key_entries=(), trusted=()) -> bytes:
    """Build a JKS store. key_entries: [(alias, pkcs8_der, [cert_der, ...])], trusted: [(alias, cert_der)]."""
    ts = int(time.time() * 1000)
    body = b"\xfe\xed\xfe\xed" + struct.pack(">II", 2, len(key_entries) + len(trusted))
    for alias, key_der, chain in key_entries:
        prot = _jks_protect_key(key_der, password)
        body += struct.pack(">I", 1) + _java_utf(alias) + struct.pack(">Q", ts)
        body += struct.pack(">I", len(prot)) + prot + struct.pack(">I", len(chain))
        for c in chain:
            body += _java_utf("X.509") + struct.pack(">I", len(c)) + c
    for alias, c in trusted:
        body += struct.pack(">I", 2) + _java_utf(alias) + struct.pack(">Q", ts)
        body += _java_utf("X.509") + struct.pack(">I", len(c)) + c
    digest = hashlib.sha1(password.encode("utf-16-be") + b"Mighty Aphrodite" + body).digest()
    return body + digest


def make_cert_material(common_name: str, password: str) -> dict:
    """The JSON of GET /project/{id}/credentials: kStore/tStore (base64 JKS), password, caChain/clientCert/clientKey (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = _dt.datetime.now(_dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "FakeHopsworks Root CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fake Hopsworks"),
    ])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1)).not_valid_after(now + _dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fake Hopsworks"),
        ]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1)).not_valid_after(now + _dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
    pkcs8 = serialization.PrivateFormat.PKCS8
    nope = serialization.NoEncryption()
    kstore = write_jks(password, key_entries=[(common_name, key.private_bytes(der, pkcs8, nope),
                                               [cert.public_bytes(der), ca_cert.public_bytes(der)])])
    tstore = write_jks(password, trusted=[("hops_root_ca", ca_cert.public_bytes(der))])
    return {
        "kStore": base64.b64encode(kstore).decode(),
        "tStore": base64.b64encode(tstore).decode(),
        "password": password,
        "caChain": ca_cert.public_bytes(pem).decode(),
        "clientCert": cert.public_bytes(pem).decode(),
        "clientKey": key.private_bytes(pem, pkcs8, nope).decode(),
    }


def _load_pem_certs(data: bytes, what: str):
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(data)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{what}: not a PEM certificate ({e})") from e
    if not certs:
        raise ValueError(f"{what}: no certificate found")
    return certs


def _load_pem_key(data: bytes, what: str):
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(data, password=None)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{what}: not a PEM private key ({e})") from e


def _check_client_identity(ca_pem: bytes, cert_pem: bytes, key_pem: bytes, trusted_ca_pem: str, what: str):
    """What a TLS handshake against the fake cluster would check: the client trusts the
    cluster CA, the client cert is signed by it and the key matches the cert."""
    from cryptography.hazmat.primitives import serialization

    cas = _load_pem_certs(ca_pem, f"{what} CA bundle")
    certs = _load_pem_certs(cert_pem, f"{what} client certificate")
    key = _load_pem_key(key_pem, f"{what} client key")
    cluster_ca = _load_pem_certs(trusted_ca_pem.encode(), "cluster CA")[0]
    if cluster_ca not in cas:
        raise ValueError(f"{what}: CA bundle does not contain the cluster CA (certificate verify failed)")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if certs[0].public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ValueError(f"{what}: private key does not match the client certificate")
    if certs[0].issuer != cluster_ca.subject:
        raise ValueError(f"{what}: client certificate not issued by the cluster CA")
    return certs[0]


def _check_jks(b64_or_bytes, password: str, what: str):
    """Parse a JKS exactly as the SDK does; raises ValueError on a wrong password/garbage."""
    from hopsworks_common.client.base import Client

    data = base64.b64decode(b64_or_bytes) if isinstance(b64_or_bytes, str) else b64_or_bytes
    import tempfile

    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        try:
            return Client._load_jks(f.name, password)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{what}: {e}") from e


# ---------------------------------------------------------------------------
# State on disk
# ---------------------------------------------------------------------------

class _Store:
    """The fake cluster's state: state.json (metadata + counters), calls.jsonl (REST log),
    kafka/<topic>.jsonl (records), offline/<table>.parquet, hopsfs/ (files)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        for d in ("kafka", "offline", "hopsfs"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        self._tlock = threading.RLock()
        self._depth = threading.local()

    def path(self, *p: str) -> str:
        return os.path.join(self.root, *p)

    @contextlib.contextmanager
    def locked(self):
        """Process- and thread-exclusive section over the whole state directory."""
        with self._tlock:
            depth = getattr(self._depth, "n", 0)
            if depth:
                self._depth.n += 1
                try:
                    yield
                finally:
                    self._depth.n -= 1
                return
            fd = os.open(self.path("state.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._depth.n = 1
                try:
                    yield
                finally:
                    self._depth.n = 0
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def _text(self) -> str:
        try:
            with open(self.path("state.json")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def load(self) -> dict:
        text = self._text()
        return json.loads(text) if text else {}

    def save(self, state: dict, text: str | None = None) -> None:
        tmp = self.path(f".state.json.{os.getpid()}.{threading.get_ident()}")
        with open(tmp, "w") as f:
            f.write(json.dumps(state, default=str) if text is None else text)  # no indent: the C encoder
        os.replace(tmp, self.path("state.json"))

    @contextlib.contextmanager
    def tx(self):
        """The state for a read-modify-write under the lock; written back only when it changed."""
        with self.locked():
            before = self._text()
            state = json.loads(before) if before else {}
            yield state
            after = json.dumps(state, default=str)
            if after != before:
                self.save(state, after)

    def append_jsonl(self, name: str, obj: dict) -> None:
        with self.locked(), open(self.path(name), "a") as f:
            f.write(json.dumps(obj, default=str) + "\n")

    def read_jsonl(self, name: str) -> list:
        try:
            with open(self.path(name)) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


# ---------------------------------------------------------------------------
# Errors answered like the Hopsworks REST server
# ---------------------------------------------------------------------------

class HttpError(Exception):
    def __init__(self, status: int, error_code: int | None, msg: str, usr_msg: str = ""):
        super().__init__(msg)
        self.status = status
        self.body = {"errorCode": error_code, "errorMsg": msg, "usrMsg": usr_msg or msg}


# error codes the SDK reacts to (see NOT_FOUND_ERROR_CODE in hsfs/hsml/hopsworks_common)
E_FG_NOT_FOUND = 270009
E_TD_NOT_FOUND = 270012
E_FV_NOT_FOUND = 270181
E_SC_NOT_FOUND = 270042
E_JOB_NOT_FOUND = 130009
E_MODEL_NOT_FOUND = 360000
E_DATASET_NOT_FOUND = 110018  # DatasetErrorCode.INODE_NOT_FOUND-ish; the SDK only looks at the status
E_UNHANDLED = 999999


# ---------------------------------------------------------------------------
# Type helpers (feature types <-> avro <-> arrow)
# ---------------------------------------------------------------------------

def _avro_type(offline_type: str):
    t = (offline_type or "string").lower()
    simple = {"bigint": "long", "int": "int", "smallint": "int", "tinyint": "int", "double": "double",
              "float": "float", "string": "string", "boolean": "boolean", "binary": "bytes"}
    if t in simple:
        return simple[t]
    if t == "timestamp":
        return {"type": "long", "logicalType": "timestamp-micros"}
    if t == "date":
        return {"type": "int", "logicalType": "date"}
    m = re.match(r"decimal\((\d+),\s*(\d+)\)", t)
    if m:
        return {"type": "bytes", "logicalType": "decimal", "precision": int(m.group(1)), "scale": int(m.group(2))}
    m = re.match(r"array<(.+)>$", t)
    if m:
        return {"type": "array", "items": ["null", _avro_type(m.group(1))]}
    return "string"


def _online_type(offline_type: str) -> str:
    t = (offline_type or "string").lower()
    return {"string": "varchar(100)", "boolean": "tinyint", "binary": "varbinary(100)"}.get(t, t)


def _arrow_type(offline_type: str):
    import pyarrow as pa

    t = (offline_type or "string").lower()
    m = {"bigint": pa.int64(), "int": pa.int32(), "smallint": pa.int16(), "tinyint": pa.int8(),
         "double": pa.float64(), "float": pa.float32(), "string": pa.string(), "boolean": pa.bool_(),
         "binary": pa.binary(), "timestamp": pa.timestamp("us"), "date": pa.date32()}
    if t in m:
        return m[t]
    return pa.string()


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------

class FakeHopsworks:
    """A fake Hopsworks cluster reached through the SDK's network seams.

    Parameters:
        state_dir: directory holding the cluster's state (shared between processes).
        host: the host name the SDK logs in to; only requests to it are answered.
        project: the single project of the cluster; api_key: the only accepted key.
        polls_to_finish: an execution is RUNNING for this many GETs, then FINISHED.
        instant_sleep: replace time.sleep with a no-op that only counts.
    """

    HOPSWORKS_VERSION = "5.2.1"

    def __init__(self, state_dir: str | None = None, *, host: str = "c.fake.hopsworks.test", port: int = 443,
                 project: str | None = None, api_key: str = "fake-key", username: str = "meb10000",
                 polls_to_finish: int = 2, instant_sleep: bool = True):
        if state_dir is None:
            state_dir = os.environ.get("HOPSWORKS_WIRE_STATE")
            if not state_dir:
                raise ValueError("state_dir not given and HOPSWORKS_WIRE_STATE not set")
        self.store = _Store(state_dir)
        self.host = host
        self.port = port
        self.project_name = project or "demo"  # the cluster's own, once it exists (below)
        self.api_key = api_key
        self.username = username
        self.polls_to_finish = polls_to_finish
        self.instant_sleep = instant_sleep
        self.flight_host = f"hqs.{host}"
        self.kafka_bootstrap = f"kafka.{host}:9092"
        self._patches: list = []
        self._started = False
        self.sleeps: list[float] = []
        self.unhandled: list[tuple[str, str]] = []
        self._rest = _RestServer(self)
        self._init_state()
        self.project_name = self.state()["project"]["name"]  # a second process on the cluster takes its name

    @classmethod
    def from_env(cls, **kw) -> FakeHopsworks:
        return cls(os.environ["HOPSWORKS_WIRE_STATE"], **kw)

    # -------------------------------------------------------------- lifecycle
    def _init_state(self) -> None:
        with self.store.tx() as s:
            if s.get("initialized"):
                return
            s.update({
                "initialized": True,
                "ids": {"fg": 13, "fv": 20, "td": 30, "job": 100, "execution": 1000, "model": 0,
                        "subject": 500, "ingestion": 0, "kafka_connector": 7, "tf": 40, "stat": 0},
                # a project id of its own: the SDK names its Kafka PEM files /tmp/kafka_sc_<project id>_...
                # (hard-coded /tmp), so two clusters in parallel test workers must not share one
                "project": {"id": 1000 + int.from_bytes(os.urandom(3), "big"), "name": self.project_name,
                            "created": _now_iso(),
                            "owner": self.username, "description": "fake project"},
                "user": {"username": self.username, "email": f"{self.username}@fake.hopsworks.test",
                         "firstName": "Fake", "lastName": "User", "uid": 10000},
                "featurestore_id": 67,
                "feature_groups": {},      # id -> FG json
                "subjects": {},            # subject name -> [ {id, version, schema} ]
                "feature_views": {},       # "name/version" -> FV json
                "training_datasets": {},   # "fvname/fvversion/tdversion" -> TD json
                "jobs": {},                # name -> job json
                "executions": {},          # id -> execution json (+ private fields)
                "models": {},              # "name/version" -> model json
                "counters": {"jobs_started": {}, "kafka_messages": 0, "rest_calls": 0, "executions_finished": 0,
                             "flight_queries": 0, "credentials_downloads": 0},
                "variables": {
                    "enable_flyingduck": "true",
                    "loadbalancer_external_domain_feature_query": self.flight_host,
                    "loadbalancer_external_domain_kafka": f"kafka.{self.host}",
                    "service_discovery_domain": "consul",
                    "enable_data_science_profile": "false",
                    "upload_policy": "enabled",
                    "featurestore_online_tablespace": "ts_1",
                },
                "hqs_secret": base64.b64encode(os.urandom(16)).decode(),
            })
            s["cert_material"] = make_cert_material(f"{self.project_name}__{self.username}",
                                                    base64.b16encode(os.urandom(12)).decode().lower())
            root = self.store.path("hopsfs", "Projects", self.project_name)
            for ds in ("Resources", "Jupyter", "Logs", "Models", "Experiments", "DataValidation",
                       f"{self.project_name}_Training_Datasets", "Statistics"):
                os.makedirs(os.path.join(root, ds), exist_ok=True)

    def start(self) -> FakeHopsworks:
        if self._started:
            return self
        if "REST_ENDPOINT" in os.environ:
            raise RuntimeError("REST_ENDPOINT is set: hopsworks.login() would build the in-cluster client "
                               "(JWT from files) instead of the external one the fake answers; unset it")
        if "LIBHDFS_DEFAULT_FS" in os.environ:
            import warnings

            warnings.warn("LIBHDFS_DEFAULT_FS is set: hsml would move model files with libhdfs instead of "
                          "the dataset REST calls this fake answers", stacklevel=2)
        import confluent_kafka
        import pyarrow.flight
        import requests.adapters

        fake = self
        orig_send = requests.adapters.HTTPAdapter.send

        def send(adapter, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
            host = urllib.parse.urlsplit(request.url).hostname
            if host == fake.host:
                return fake._rest.handle(adapter, request)
            return orig_send(adapter, request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                             proxies=proxies)

        self._patch(requests.adapters.HTTPAdapter, "send", send)

        producer_cls = _make_producer_class(self)
        consumer_cls = _make_consumer_class(self)
        self._patch(confluent_kafka, "Producer", producer_cls)
        self._patch(confluent_kafka, "Consumer", consumer_cls)
        # hsfs.core.kafka_engine does `from confluent_kafka import Producer, Consumer`: imported
        # after start() it picks the fakes up by itself; imported before, its names are patched.
        import sys

        kafka_engine = sys.modules.get("hsfs.core.kafka_engine")
        if kafka_engine is not None and hasattr(kafka_engine, "Producer"):
            self._patch(kafka_engine, "Producer", producer_cls)
            self._patch(kafka_engine, "Consumer", consumer_cls)
        self._fake_kafka = (producer_cls, consumer_cls)
        self._patch(pyarrow.flight, "FlightClient", _make_flight_client_class(self))

        class FlightCallOptions(pyarrow.flight.FlightCallOptions):
            """Real FlightCallOptions that also remembers its headers, so the fake server can read them."""

            def __init__(self, timeout=None, write_options=None, headers=None, read_options=None):
                super().__init__(timeout=timeout, write_options=write_options, headers=headers,
                                 read_options=read_options)
                self._fake_headers = list(headers or [])
                self._fake_timeout = timeout

        self._patch(pyarrow.flight, "FlightCallOptions", FlightCallOptions)
        if self.instant_sleep:
            real_sleep = time.sleep

            def fake_sleep(seconds):
                # Instant on the main thread (the SDK's polling loops); background threads
                # (the SDK's loading animation, upload workers) still sleep a little, capped,
                # so they do not spin.
                import sys

                f = sys._getframe(1)
                fake.sleeps.append((seconds, f"{f.f_globals.get('__name__')}:{f.f_lineno}",
                                    threading.current_thread().name))
                if threading.current_thread() is threading.main_thread():
                    real_sleep(0)
                else:
                    real_sleep(min(seconds, 0.05))

            self._patch(time, "sleep", fake_sleep)
        self._started = True
        return self

    def stop(self) -> None:
        for obj, name, old in reversed(self._patches):
            setattr(obj, name, old)
        self._patches.clear()
        import sys

        # a kafka_engine first imported while the fake ran holds the fake classes: give it the real ones
        kafka_engine = sys.modules.get("hsfs.core.kafka_engine")
        if kafka_engine is not None and getattr(self, "_fake_kafka", None):
            import confluent_kafka

            if getattr(kafka_engine, "Producer", None) is self._fake_kafka[0]:
                kafka_engine.Producer = confluent_kafka.Producer
            if getattr(kafka_engine, "Consumer", None) is self._fake_kafka[1]:
                kafka_engine.Consumer = confluent_kafka.Consumer
        self._started = False

    def __enter__(self) -> FakeHopsworks:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _patch(self, obj, name, new) -> None:
        self._patches.append((obj, name, getattr(obj, name)))
        setattr(obj, name, new)

    # -------------------------------------------------------------- counters / inspection
    def state(self) -> dict:
        with self.store.locked():
            return self.store.load()

    def rest_calls(self, pid: int | None = None) -> list[tuple[str, str]]:
        """(method, path) of every REST call the cluster answered (all processes unless pid)."""
        return [(c["method"], c["path"]) for c in self.store.read_jsonl("calls.jsonl")
                if pid is None or c["pid"] == pid]

    def rest_call_log(self) -> list[dict]:
        return self.store.read_jsonl("calls.jsonl")

    def jobs_started(self, job_name: str | None = None):
        """Executions started per job name (dict), or for one job (int)."""
        started = self.state()["counters"]["jobs_started"]
        return started.get(job_name, 0) if job_name else dict(started)

    def total_jobs_started(self) -> int:
        return sum(self.state()["counters"]["jobs_started"].values())

    def jobs_started_per_group(self) -> dict:
        """Executions started per feature group ("<name>_<version>") for the groups' materialization jobs."""
        s = self.state()
        out: dict = {}
        for name, n in s["counters"]["jobs_started"].items():
            job = s["jobs"].get(name, {})
            fg = s["feature_groups"].get(str(job.get("_fake_fg_id")))
            key = f"{fg['name']}_{fg['version']}" if fg else name
            out[key] = out.get(key, 0) + n
        return out

    def sdk_leftovers(self) -> list[str]:
        """What the SDK wrote for this cluster outside its folder, at /tmp paths it hard-codes and never deletes: the
        Kafka PEM files (hopsworks_common/client/base.py, `_write_pem`), the model download cache
        (hsml/engine/model_engine.py, `_model_cache_base_dirs`) and the default certificate folder."""
        import glob

        project_id = self.state()["project"]["id"]
        return [*glob.glob(f"/tmp/kafka_sc_{project_id}_*.pem"), f"/tmp/hopsworks/models/{self.project_name}",
                f"/tmp/{self.host}/{self.project_name}"]

    def remove_sdk_leftovers(self) -> None:
        """Remove `sdk_leftovers()`: a test run leaves nothing of its clusters in /tmp."""
        import shutil

        for path in self.sdk_leftovers():
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)

    def fail_next_execution(self, job_name: str, state: str = "FAILED") -> None:
        """Make the next execution of `job_name` end in `state` (FAILED, KILLED, ...) without running."""
        with self.store.tx() as s:
            s.setdefault("fail_next", {})[job_name] = state

    def snapshot(self) -> dict:
        """Counters now; pass to delta() later to see what a stage did."""
        return {"jobs_started": dict(self.state()["counters"]["jobs_started"]),
                "kafka_messages": len(self.kafka_messages()), "rest_calls": len(self.rest_calls())}

    def delta(self, before: dict) -> dict:
        now = self.snapshot()
        jobs = {k: v - before["jobs_started"].get(k, 0) for k, v in now["jobs_started"].items()
                if v - before["jobs_started"].get(k, 0)}
        return {"jobs_started": jobs, "jobs_started_total": sum(jobs.values()),
                "kafka_messages": now["kafka_messages"] - before["kafka_messages"],
                "rest_calls": now["rest_calls"] - before["rest_calls"]}

    def kafka_messages(self, topic: str | None = None) -> list[dict]:
        """Produced records: topic, key, headers, offset and the decoded Avro value."""
        out = []
        for name in sorted(os.listdir(self.store.path("kafka"))):
            if not name.endswith(".jsonl"):
                continue
            t = name[:-len(".jsonl")]
            if topic is None or t == topic:
                out.extend(self.store.read_jsonl(os.path.join("kafka", name)))
        return out

    def offline_table(self, fg_name: str, version: int):
        """The materialized offline rows of a feature group as a pandas DataFrame."""
        t = _read_offline(self, self.project_name, fg_name, version)
        return None if t is None else t.to_pandas()

    def counters(self) -> dict:
        c = self.state()["counters"]
        c = dict(c)
        c["kafka_messages_total"] = len(self.kafka_messages())
        c["rest_calls_total"] = len(self.rest_calls())
        return c

# ---------------------------------------------------------------------------
# Offline tables
# ---------------------------------------------------------------------------

def _offline_path(fake: FakeHopsworks, project: str, name: str, version: int) -> str:
    return fake.store.path("offline", f"{project}.{name}_{version}.parquet")


def _read_offline(fake: FakeHopsworks, project: str, name: str, version: int):
    import pyarrow.parquet as pq

    p = _offline_path(fake, project, name, version)
    if not os.path.exists(p):
        return None
    return pq.read_table(p)


def _empty_offline_table(fg: dict):
    import pyarrow as pa

    return pa.schema([(f["name"], _arrow_type(f["type"])) for f in fg["features"]]).empty_table()


def _upsert_offline(fake: FakeHopsworks, fg: dict, rows: list[dict]) -> None:
    """Hudi upsert semantics: the last record per primary key wins."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    project = fake.project_name
    schema = pa.schema([(f["name"], _arrow_type(f["type"])) for f in fg["features"]])
    old = _read_offline(fake, project, fg["name"], fg["version"])
    pks = [f["name"] for f in fg["features"] if f.get("primary")]
    merged: dict = {}
    order = []
    for r in (old.to_pylist() if old is not None else []) + rows:
        k = tuple(r.get(p) for p in pks) if pks else len(order)
        if k not in merged:
            order.append(k)
        merged[k] = {f.name: r.get(f.name) for f in schema}
    cols = {f.name: [merged[k][f.name] for k in order] for f in schema}
    for f in schema:
        if pa.types.is_timestamp(f.type):
            cols[f.name] = [v.replace(tzinfo=None) if isinstance(v, _dt.datetime) and v.tzinfo else v
                            for v in cols[f.name]]
    table = pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in schema}, schema=schema)
    pq.write_table(table, _offline_path(fake, project, fg["name"], fg["version"]))


def _finish_execution(fake: FakeHopsworks, s: dict, ex: dict) -> None:
    """Run what the job does, then mark it FINISHED/SUCCEEDED and write its logs."""
    job = s["jobs"][ex["jobName"]]
    forced = ex.get("_fail_as")
    if forced:
        log = f"fake cluster: execution forced to end as {forced}\n"
        ex["state"], ex["finalStatus"] = forced, ("KILLED" if forced == "KILLED" else "FAILED")
    else:
        try:
            log = _run_job_body(fake, s, job, ex)
            ex["state"], ex["finalStatus"] = "FINISHED", "SUCCEEDED"
        except Exception:  # noqa: BLE001
            log = traceback.format_exc()
            ex["state"], ex["finalStatus"] = "FAILED", "FAILED"
    ex["duration"] = 1234
    ex["progress"] = 1.0
    for key, text in (("stdoutPath", log), ("stderrPath", "")):
        local = _hopsfs_local(fake, ex[key])
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "w") as f:
            f.write(text)
    s["counters"]["executions_finished"] = s["counters"].get("executions_finished", 0) + 1


def _run_job_body(fake: FakeHopsworks, s: dict, job: dict, ex: dict) -> str:
    kind = job.get("_fake_kind")
    if kind == "materialization":
        return _materialize(fake, s, job["_fake_fg_id"], ex)
    return f"fake job {job['name']} ran with args {ex.get('args')!r}\n"


def _materialize(fake: FakeHopsworks, s: dict, fg_id: int, ex: dict) -> str:
    """The offline materialization job: read the FG's topic from the committed offset (or the
    -initialCheckPointString the SDK passed), decode the Avro records, upsert them offline."""
    import fastavro

    fg = s["feature_groups"][str(fg_id)]
    topic = fg["onlineTopicName"]
    records = fake.store.read_jsonl(os.path.join("kafka", f"{topic}.jsonl"))
    committed = fg.get("_committed_offset", 0)
    args = ex.get("args") or ""
    m = re.search(r"-initialCheckPointString\s+(\S+)", args)
    start = committed
    if m:
        parts = m.group(1).split(",")[1:]
        offs = {int(p.split(":")[0]): int(p.split(":")[1]) for p in parts}
        start = offs.get(0, committed)
    subject = s["subjects"][fg["name"] + "_" + str(fg["version"])][-1]
    schema = fastavro.parse_schema(json.loads(subject["schema"]))
    rows = []
    skipped = 0
    for rec in records:
        if rec["offset"] < start:
            continue
        hdrs = rec.get("headers") or {}
        if hdrs.get("storage") in ("online",) or hdrs.get("operation") == "delete":
            skipped += 1
            continue
        value = fastavro.schemaless_reader(io.BytesIO(base64.b64decode(rec["value_b64"])), schema)
        rows.append(value)
    if rows:
        _upsert_offline(fake, fg, rows)
    elif _read_offline(fake, fake.project_name, fg["name"], fg["version"]) is None:
        import pyarrow.parquet as pq

        pq.write_table(_empty_offline_table(fg), _offline_path(fake, fake.project_name, fg["name"], fg["version"]))
    end = (records[-1]["offset"] + 1) if records else 0
    statistics = ""
    if (fg.get("statisticsConfig") or {}).get("enabled", True):
        # the job's statistics step (server side, after the commit): the step a hosted user saw fail with
        # "Transaction marked for rollback"; a group created with statistics_config=False has none
        s.setdefault("statistics", {}).setdefault(f"fg:{fg_id}", []).append(
            {"id": len(s["statistics"].get(f"fg:{fg_id}", [])) + 1, "computationTime": _now_ms(),
             "rowPercentage": 1.0, "featureDescriptiveStatistics": [], "type": "statisticsDTO"})
        statistics = "; computed the group's descriptive statistics"
    fg["_committed_offset"] = max(end, committed)
    fg.setdefault("_commits", []).append({"commitID": _now_ms(), "rowsInserted": len(rows),
                                          "rowsUpdated": 0, "rowsDeleted": 0,
                                          "commitDateString": _now_iso(), "commitTime": _now_ms()})
    return (f"materialized {len(rows)} records of topic {topic} from offset {start} to {end} "
            f"(skipped {skipped}) into {fake.project_name}_featurestore.{fg['name']}_{fg['version']}{statistics}\n")


def _hopsfs_local(fake: FakeHopsworks, path: str) -> str:
    """Map a Hopsworks path (relative to the project, /Projects/..., hopsfs://...) to the local disk."""
    p = _hopsfs_abs(fake, path)
    return fake.store.path("hopsfs", p.lstrip("/"))


def _hopsfs_abs(fake: FakeHopsworks, path: str) -> str:
    p = re.sub(r"^(hopsfs|hdfs)://[^/]*", "", path)
    if not p.startswith("/"):
        p = f"/Projects/{fake.project_name}/{p}"
    p = os.path.normpath(p)
    return p


# ---------------------------------------------------------------------------
# REST server
# ---------------------------------------------------------------------------

class _Request:
    def __init__(self, method: str, segments: list[str], query: dict, headers, body: bytes):
        self.method = method
        self.segments = segments
        self.query = query  # name -> list of values
        self.headers = headers
        self.body = body

    def q(self, name: str, default=None):
        v = self.query.get(name)
        return v[-1] if v else default

    def qlist(self, name: str) -> list:
        return self.query.get(name, [])

    def json(self):
        return json.loads(self.body.decode() or "null")

    def form(self) -> tuple[dict, dict]:
        """multipart/form-data -> (fields, files{name: (filename, bytes)})."""
        ctype = self.headers.get("Content-Type", "")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body)
        fields, files = {}, {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fname = part.get_param("filename", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if fname is not None:
                files[name] = (fname, payload)
            else:
                fields[name] = payload.decode()
        return fields, files


class _RestServer:
    def __init__(self, fake: FakeHopsworks):
        self.fake = fake
        self.routes: list = []
        from_self = [getattr(self, n) for n in dir(self) if n.startswith("r_")]
        for fn in from_self:
            for spec in fn.__doc__.strip().splitlines()[0].split("|"):
                method, pattern = spec.strip().split(" ", 1)
                self.routes.append((method, pattern.strip("/").split("/"), fn))
        # longest/specific patterns first
        self.routes.sort(key=lambda r: (-len(r[1]), sum(p.startswith("{") for p in r[1])))

    # ---------------------------------------------------------------- plumbing
    def handle(self, adapter, request):
        import urllib3

        parts = urllib.parse.urlsplit(request.url)
        raw_segments = parts.path.split("/")
        segments = [urllib.parse.unquote(s) for s in raw_segments if s != ""]
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        body = request.body or b""
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        req = _Request(request.method, segments, query, request.headers, body)
        status, payload, headers = self.dispatch(req)
        if isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
            headers.setdefault("Content-Type", "application/octet-stream")
        elif payload is None:
            data = b""
        else:
            data = json.dumps(payload, default=str).encode()
            headers.setdefault("Content-Type", "application/json")
        headers["Content-Length"] = str(len(data))
        reason = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
                  403: "Forbidden", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}.get(status, "")
        resp = urllib3.HTTPResponse(body=io.BytesIO(data), headers=headers, status=status, reason=reason,
                                    preload_content=False, decode_content=False, request_url=request.url)
        return adapter.build_response(request, resp)

    def dispatch(self, req: _Request):
        fake = self.fake
        path = "/" + "/".join(req.segments)
        try:
            if req.segments[:2] != ["hopsworks-api", "api"]:
                raise HttpError(404, E_UNHANDLED, f"FakeHopsworks: no resource at {path}")
            auth = req.headers.get("Authorization", "")
            if auth != f"ApiKey {fake.api_key}":
                raise HttpError(401, 200003, "Authorization header invalid or API key not valid")
            segs = req.segments[2:]
            for method, pattern, fn in self.routes:
                if method != req.method:
                    continue
                params = _match(pattern, segs)
                if params is None:
                    continue
                with fake.store.tx() as s:
                    self.s = s
                    result = fn(req, **params)
                status, payload, headers = (result if isinstance(result, tuple) else (200, result, {}))
                break
            else:
                fake.unhandled.append((req.method, path))
                raise HttpError(404, E_UNHANDLED,
                                f"FakeHopsworks does not implement {req.method} {path}?{urllib.parse.urlencode(req.query, doseq=True)}")
        except HttpError as e:
            status, payload, headers = e.status, e.body, {}
        except Exception as e:  # noqa: BLE001 - a bug in the fake answers 500 like a server would
            status, payload, headers = 500, {"errorCode": 0, "errorMsg": f"FakeHopsworks internal error: {e!r}",
                                             "usrMsg": traceback.format_exc()}, {}
        with fake.store.locked():
            entry = {"pid": os.getpid(), "method": req.method, "path": path, "query": req.query,
                     "status": status}
            ctype = req.headers.get("Content-Type", "") or ""
            if req.body and ("json" in ctype or "text" in ctype) and len(req.body) < 65536:
                try:
                    entry["body"] = json.loads(req.body)
                except ValueError:
                    entry["body"] = req.body.decode(errors="replace")
            if status >= 400:
                entry["error"] = payload
            fake.store.append_jsonl("calls.jsonl", entry)
        return status, payload, headers

    # ---------------------------------------------------------------- helpers
    def _next_id(self, kind: str) -> int:
        self.s["ids"][kind] = self.s["ids"].get(kind, 0) + 1
        return self.s["ids"][kind]

    def _check_project(self, pid) -> None:
        if str(pid) != str(self.s["project"]["id"]):
            raise HttpError(404, 150004, f"Project {pid} not found")

    def _check_fs(self, pid, fsid) -> None:
        self._check_project(pid)
        if str(fsid) not in (str(self.s["featurestore_id"]), f"{self.fake.project_name}_featurestore"):
            raise HttpError(404, 270003, f"Featurestore {fsid} not found")

    @property
    def fs_name(self) -> str:
        return f"{self.fake.project_name}_featurestore"

    def _user_json(self) -> dict:
        u = self.s["user"]
        return {"email": u["email"], "firstName": u["firstName"], "lastName": u["lastName"],
                "username": u["username"], "status": 2, "maxNumProjects": 10, "numActiveProjects": 1,
                "testUser": False, "tos": True, "toursState": 0, "twoFactor": False}

    def _project_json(self) -> dict:
        p = self.s["project"]
        return {"projectId": p["id"], "projectName": p["name"], "owner": self.s["user"]["email"],
                "description": p["description"], "created": p["created"], "archived": False,
                "retentionPeriod": None, "dockerImage": "python311:5.2.1", "isOldDockerImage": False,
                "isPreinstalledDockerImage": True, "inodeid": 1001, "namespace": p["name"],
                "creationStatus": "CREATED", "services": ["JOBS", "FEATURESTORE", "KAFKA", "SERVING"]}

    # ================================================================ variables / project / credentials
    def r_versions(self, req):
        """GET variables/versions"""
        return [{"software": "hopsworks", "version": self.fake.HOPSWORKS_VERSION},
                {"software": "rondb", "version": "24.10.1"}]

    def r_variable(self, req, name):
        """GET variables/{name}"""
        v = self.s["variables"].get(name)
        if v is None:
            raise HttpError(404, 150052, f"Variable {name} not found")
        return {"successMessage": v}

    def r_project_info(self, req, name):
        """GET project/getProjectInfo/{name}"""
        if name != self.s["project"]["name"]:
            raise HttpError(404, 150004, f"Project {name} not found", "Project wasn't found.")
        return self._project_json()

    def r_project_teams(self, req):
        """GET project"""
        p = self.s["project"]
        return [{"project": {"id": p["id"], "name": p["name"], "owner": {"uid": self.s["user"]["uid"],
                                                                         "username": self.s["user"]["username"]}},
                 "user": {"uid": self.s["user"]["uid"], "username": self.s["user"]["username"],
                          "email": self.s["user"]["email"]},
                 "teamRole": "Data owner", "timestamp": p["created"]}]

    def r_credentials(self, req, pid):
        """GET project/{pid}/credentials"""
        self._check_project(pid)
        self.s["counters"]["credentials_downloads"] = self.s["counters"].get("credentials_downloads", 0) + 1
        return dict(self.s["cert_material"])

    # ================================================================ feature store
    def _fs_json(self) -> dict:
        return {"featurestoreId": self.s["featurestore_id"], "featurestoreName": self.fs_name,
                "created": self.s["project"]["created"], "projectName": self.fake.project_name,
                "projectId": self.s["project"]["id"], "offlineFeaturestoreName": self.fs_name,
                "onlineFeaturestoreName": self.fake.project_name, "onlineEnabled": True,
                "numFeatureGroups": len(self.s["feature_groups"]), "numFeatureViews": len(self.s["feature_views"]),
                "numTrainingDatasets": len(self.s["training_datasets"]), "numStorageConnectors": 1,
                "onlineFeaturestoreSize": 0, "type": "featurestoreDTO"}

    def r_featurestore(self, req, pid, fsid):
        """GET project/{pid}/featurestores/{fsid}"""
        self._check_fs(pid, fsid)
        return self._fs_json()

    def r_featurestores(self, req, pid):
        """GET project/{pid}/featurestores"""
        self._check_project(pid)
        return [self._fs_json()]

    # ================================================================ feature groups
    def _fg_out(self, fg: dict) -> dict:
        return {k: v for k, v in fg.items() if not k.startswith("_")}

    def _find_fgs(self, name: str, version=None) -> list:
        out = [fg for fg in self.s["feature_groups"].values() if fg["name"] == name
               and (version is None or int(fg["version"]) == int(version))]
        return sorted(out, key=lambda fg: fg["version"])

    def r_fg_create(self, req, pid, fsid):
        """POST project/{pid}/featurestores/{fsid}/featuregroups"""
        self._check_fs(pid, fsid)
        body = req.json()
        name, version = body["name"], body.get("version")
        if version is None:
            existing = self._find_fgs(name)
            version = (existing[-1]["version"] + 1) if existing else 1
        if self._find_fgs(name, version):
            raise HttpError(400, 270089, f"Feature group {name} version {version} already exists",
                            "The feature group you are trying to create does already exist.")
        if body.get("type") not in ("streamFeatureGroupDTO", "cachedFeaturegroupDTO"):
            raise HttpError(400, E_UNHANDLED, f"FakeHopsworks only creates stream/cached feature groups, got {body.get('type')}")
        fgid = self._next_id("fg")
        pk = [f["name"] for f in body.get("features", []) if f.get("primary")]
        if not pk:
            raise HttpError(400, 270085, "Feature group has no primary key")
        features = []
        precombine = next((f["name"] for f in body["features"] if f.get("hudiPrecombineKey")),
                          body.get("eventTime") or pk[0])
        for f in body["features"]:
            ff = {"name": f["name"], "type": f.get("type") or "string", "description": f.get("description"),
                  "primary": bool(f.get("primary")), "foreign": bool(f.get("foreign")),
                  "partition": bool(f.get("partition")), "hudiPrecombineKey": f["name"] == precombine,
                  "onlineType": f.get("onlineType") or _online_type(f.get("type")),
                  "defaultValue": f.get("defaultValue"), "featureGroupId": fgid}
            features.append(ff)
        fg = dict(body)
        fg.update({
            "id": fgid, "version": version, "featurestoreId": self.s["featurestore_id"],
            "featurestoreName": self.fs_name, "created": _now_iso(), "creator": self._user_json(),
            "location": f"hopsfs://namenode.service.consul:8020/apps/hive/warehouse/{self.fs_name}.db/{name}_{version}",
            "onlineTopicName": f"{self.s['project']['id']}_{fgid}_{name}_{version}_onlinefs",
            "features": features, "timeTravelFormat": (body.get("timeTravelFormat") or "HUDI").upper(),
            "expectationSuite": None, "deprecated": False,
            "statisticsConfig": body.get("statisticsConfig") or {"enabled": True, "histograms": False,
                                                                 "correlations": False, "exactUniqueness": False,
                                                                 "columns": []},
        })
        fg["type"] = body["type"]
        self.s["feature_groups"][str(fgid)] = fg
        # schema registry subject with the server-side Avro schema
        subject = f"{name}_{version}"
        fields = []
        for f in features:
            t = _avro_type(f["type"])
            fields.append({"name": f["name"], "type": t if f["primary"] else ["null", t]})
        schema = {"type": "record", "name": subject, "namespace": f"{self.fs_name}.db", "fields": fields}
        self.s["subjects"][subject] = [{"id": self._next_id("subject"), "subject": subject, "version": 1,
                                        "schema": json.dumps(schema)}]
        # the topic exists from creation on
        topic_file = self.fake.store.path("kafka", fg["onlineTopicName"] + ".jsonl")
        open(topic_file, "a").close()
        if fg["type"] == "streamFeatureGroupDTO":
            self._create_job(f"{name}_{version}_offline_fg_materialization", "SPARK",
                             {"type": "sparkJobConfiguration", "appName": f"{name}_{version}_offline_fg_materialization",
                              "mainClass": "com.logicalclocks.utils.MainClass",
                              "appPath": "hdfs:///user/spark/hsfs-utils.jar",
                              "defaultArgs": f"-op offline_fg_materialization -path hdfs:///Projects/{self.fake.project_name}"
                                             f"/Resources/jobs/{name}_{version}_offline_fg_materialization/config_{_now_ms()}",
                              "spark.executor.instances": 1, "spark.executor.memory": 2048},
                             kind="materialization", fg_id=fgid)
        return self._fg_out(fg)

    def r_fg_get(self, req, pid, fsid, name):
        """GET project/{pid}/featurestores/{fsid}/featuregroups/{name}"""
        self._check_fs(pid, fsid)
        if name.isdigit():
            fg = self.s["feature_groups"].get(name)
            if not fg:
                raise HttpError(404, E_FG_NOT_FOUND, f"Feature group id {name} not found")
            return self._fg_out(fg)
        fgs = self._find_fgs(name, req.q("version"))
        if not fgs:
            raise HttpError(404, E_FG_NOT_FOUND, "Featuregroup wasn't found.",
                            f"feature group name: {name}, version: {req.q('version')}")
        return [self._fg_out(fg) for fg in fgs]

    def r_fg_delete(self, req, pid, fsid, fgid):
        """DELETE project/{pid}/featurestores/{fsid}/featuregroups/{fgid}"""
        self._check_fs(pid, fsid)
        fg = self.s["feature_groups"].get(fgid)
        if fg is None:
            raise HttpError(404, E_FG_NOT_FOUND, f"Feature group id {fgid} not found")
        views = [k for k, fv in self.s["feature_views"].items() if fv["_query"]["_fgId"] == fg["id"]]
        if views and (req.q("force") or "").lower() != "true":
            raise HttpError(400, 270240, f"Feature group {fg['name']} is used by feature views {views}",
                            "Delete the feature views first, or pass force=True.")
        del self.s["feature_groups"][fgid]
        self.s["subjects"].pop(f"{fg['name']}_{fg['version']}", None)
        self.s["jobs"] = {n: j for n, j in self.s["jobs"].items() if j.get("_fake_fg_id") != fg["id"]}
        for leftover in (_offline_path(self.fake, self.fake.project_name, fg["name"], fg["version"]),
                         self.fake.store.path("kafka", fg["onlineTopicName"] + ".jsonl"),
                         self.fake.store.path("kafka", fg["onlineTopicName"] + ".count")):
            if os.path.exists(leftover):
                os.remove(leftover)
        return None

    def r_fg_expectation_suite(self, req, pid, fsid, fgid):
        """GET project/{pid}/featurestores/{fsid}/featuregroups/{fgid}/expectationsuite"""
        self._check_fs(pid, fsid)
        if fgid not in self.s["feature_groups"]:
            raise HttpError(404, E_FG_NOT_FOUND, f"Feature group id {fgid} not found")
        # expectation_suite_fixtures.json "get_list_empty"
        return {"count": 0, "items": []}

    def r_subject(self, req, pid, fsid, subject, version):
        """GET project/{pid}/featurestores/{fsid}/kafka/subjects/{subject}/versions/{version}"""
        self._check_fs(pid, fsid)
        versions = self.s["subjects"].get(subject)
        if not versions:
            raise HttpError(404, 190042, f"Subject {subject} not found")
        v = versions[-1] if version == "latest" else next((x for x in versions if str(x["version"]) == version), None)
        if v is None:
            raise HttpError(404, 190042, f"Subject {subject} version {version} not found")
        return dict(v)

    def r_kafka_connector(self, req, pid, fsid):
        """GET project/{pid}/featurestores/{fsid}/storageconnectors/kafka_connector/byok"""
        self._check_fs(pid, fsid)
        external = req.q("external", "false").lower() == "true"
        return {"type": "featurestoreKafkaConnectorDTO", "description": "Hopsworks internal kafka cluster",
                "featurestoreId": self.s["featurestore_id"], "id": self.s["ids"]["kafka_connector"],
                "name": "kafka_connector", "storageConnectorType": "KAFKA",
                "bootstrapServers": self.fake.kafka_bootstrap if external else "broker.kafka.service.consul:9091",
                "securityProtocol": "SSL", "sslEndpointIdentificationAlgorithm": "",
                "options": [], "externalKafka": False}

    # ================================================================ feature views / training datasets
    def _fg_short(self, fg: dict) -> dict:
        # feature_view_fixtures.json "features[].featuregroup": a trimmed featuregroupDTO
        return {"type": fg["type"], "featurestoreId": fg["featurestoreId"], "featurestoreName": fg["featurestoreName"],
                "version": fg["version"], "name": fg["name"], "id": fg["id"], "onlineEnabled": fg.get("onlineEnabled", False),
                "deprecated": False, "eventTime": fg.get("eventTime"), "timeTravelFormat": fg.get("timeTravelFormat"),
                "statisticsConfig": fg.get("statisticsConfig"), "features": fg["features"],
                "onlineTopicName": fg.get("onlineTopicName"), "location": fg.get("location")}

    def _canonical_query(self, q: dict) -> dict:
        """Store a query the way the server does: the feature group by reference, full feature DTOs."""
        _refuse_joins(q)
        fgj = q["leftFeatureGroup"]
        fg = self.s["feature_groups"].get(str(fgj.get("id")))
        if fg is None:
            raise HttpError(404, E_FG_NOT_FOUND, f"Feature group {fgj.get('name')} not found")
        feats = {f["name"]: f for f in fg["features"]}
        left = []
        for f in q.get("leftFeatures") or []:
            name = f["name"] if isinstance(f, dict) else f
            if name not in feats:
                raise HttpError(400, 270150, f"Feature {name} not found in feature group {fg['name']}")
            left.append(dict(feats[name]))
        joins = []
        for j in q.get("joins") or []:
            joins.append({"query": self._canonical_query(j["query"]), "on": j.get("on") or [],
                          "leftOn": j.get("leftOn") or [], "rightOn": j.get("rightOn") or [],
                          "type": j.get("type") or "INNER", "prefix": j.get("prefix")})
        return {"_fgId": fg["id"], "leftFeatures": left, "joins": joins, "filter": q.get("filter"),
                "leftFeatureGroupStartTime": q.get("leftFeatureGroupStartTime"),
                "leftFeatureGroupEndTime": q.get("leftFeatureGroupEndTime")}

    def _query_out(self, cq: dict) -> dict:
        fg = self.s["feature_groups"].get(str(cq["_fgId"]))
        if fg is None:
            raise HttpError(404, E_FG_NOT_FOUND, "Featuregroup wasn't found.")
        return {"featureStoreName": self.fs_name, "featureStoreId": self.s["featurestore_id"],
                "leftFeatureGroup": self._fg_out(fg), "leftFeatures": [dict(f) for f in cq["leftFeatures"]],
                "leftFeatureGroupStartTime": cq.get("leftFeatureGroupStartTime"),
                "leftFeatureGroupEndTime": cq.get("leftFeatureGroupEndTime"),
                "joins": [dict(j, query=self._query_out(j["query"])) for j in cq["joins"]],
                "filter": cq.get("filter"), "hiveEngine": True, "type": "queryDTO"}

    def _query_features(self, cq: dict, prefix=None) -> list:
        """(output name, feature DTO, fg) for every selected feature, joins flattened."""
        fg = self.s["feature_groups"][str(cq["_fgId"])]
        out = [((prefix or "") + f["name"], f, fg) for f in cq["leftFeatures"]]
        for j in cq["joins"]:
            out += self._query_features(j["query"], j.get("prefix"))
        return out

    def _fv_key(self, name, version) -> str:
        return f"{name}/{int(version)}"

    def _fv(self, name, version) -> dict:
        fv = self.s["feature_views"].get(self._fv_key(name, version))
        if fv is None:
            raise HttpError(404, E_FV_NOT_FOUND, "Feature view wasn't found.",
                            f"feature view name: {name}, version: {version}")
        return fv

    def _fv_out(self, fv: dict) -> dict:
        out = {k: v for k, v in fv.items() if not k.startswith("_")}
        out["query"] = self._query_out(fv["_query"])
        feats = []
        for f in fv["features"]:
            fg = self.s["feature_groups"].get(str(f["_fgId"]))
            ff = {k: v for k, v in f.items() if not k.startswith("_")}
            ff["featuregroup"] = self._fg_short(fg) if fg else None
            feats.append(ff)
        out["features"] = feats
        out["servingKeys"] = self._serving_keys(fv["_query"])
        return out

    def _serving_keys(self, cq: dict) -> list:
        """serving_keys_fixtures.json: every primary key of every feature group of the query."""
        out = []

        def walk(q, idx, prefix, join_on):
            fg = self.s["feature_groups"][str(q["_fgId"])]
            short = self._fg_short(fg)
            short["type"] = "featuregroupDTO"
            for f in fg["features"]:
                if f.get("primary"):
                    out.append({"featureName": f["name"], "featureGroup": short, "required": idx == 0 or not join_on,
                                "joinOn": None if idx == 0 else (join_on or None), "joinIndex": idx,
                                "prefix": prefix or ""})
            n = idx
            for j in q["joins"]:
                n += 1
                on = [x["name"] if isinstance(x, dict) else x for x in (j.get("leftOn") or j.get("on") or [])]
                walk(j["query"], n, j.get("prefix"), on[0] if on else None)

        walk(cq, 0, None, None)
        return out

    def r_fv_create(self, req, pid, fsid):
        """POST project/{pid}/featurestores/{fsid}/featureview"""
        self._check_fs(pid, fsid)
        body = req.json()
        name = body["name"]
        versions = [int(k.split("/")[1]) for k in self.s["feature_views"] if k.split("/")[0] == name]
        version = body.get("version") or (max(versions) + 1 if versions else 1)
        if self._fv_key(name, version) in self.s["feature_views"]:
            raise HttpError(400, 270179, f"Feature view {name} version {version} already exists",
                            "Feature view already exists.")
        cq = self._canonical_query(body["query"])
        posted = {f["name"]: f for f in (body.get("features") or [])}
        feats = []
        for i, (out_name, f, fg) in enumerate(self._query_features(cq)):
            pf = posted.get(out_name, {})
            feats.append({"name": out_name, "type": f["type"], "index": i, "_fgId": fg["id"],
                          "featureGroupFeatureName": f["name"], "label": bool(pf.get("label")),
                          "inferenceHelperColumn": bool(pf.get("inferenceHelperColumn")),
                          "trainingHelperColumn": bool(pf.get("trainingHelperColumn")),
                          "transformationFunction": None})
        unknown = set(posted) - {f["name"] for f in feats}
        if unknown:
            raise HttpError(400, 270150, f"Features {sorted(unknown)} are not in the query")
        fv = {"id": self._next_id("fv"), "name": name, "version": version, "description": body.get("description"),
              "featurestoreId": self.s["featurestore_id"], "featurestoreName": self.fs_name,
              "created": _now_iso(), "creator": self._user_json(), "type": "featureViewDTO",
              "loggingEnabled": bool(body.get("loggingEnabled")), "transformationFunctions": [],
              "_query": cq, "features": feats}
        self.s["feature_views"][self._fv_key(name, version)] = fv
        return self._fv_out(fv)

    def r_fv_get_version(self, req, pid, fsid, name, version):
        """GET project/{pid}/featurestores/{fsid}/featureview/{name}/version/{version}"""
        self._check_fs(pid, fsid)
        return self._fv_out(self._fv(name, version))

    def r_fv_delete(self, req, pid, fsid, name, version):
        """DELETE project/{pid}/featurestores/{fsid}/featureview/{name}/version/{version}"""
        self._check_fs(pid, fsid)
        self._fv(name, version)
        del self.s["feature_views"][self._fv_key(name, version)]
        for k in [k for k in self.s["training_datasets"] if k.startswith(f"{name}/{int(version)}/")]:
            del self.s["training_datasets"][k]
        return None

    def r_fv_batch_query(self, req, pid, fsid, name, version):
        """GET project/{pid}/featurestores/{fsid}/featureview/{name}/version/{version}/query/batch"""
        self._check_fs(pid, fsid)
        fv = self._fv(name, version)
        flag = lambda k: (req.q(k, "false") or "false").lower() == "true"  # noqa: E731
        cq = json.loads(json.dumps(fv["_query"]))
        fg = self.s["feature_groups"][str(cq["_fgId"])]
        by_name = {f["name"]: f for f in fv["features"]}

        def keep(out_name):
            f = by_name.get(out_name)
            if f is None:
                return True
            if f["label"] and not flag("with_label"):
                return False
            if f["inferenceHelperColumn"] and not flag("inference_helper_columns"):
                return False
            if f["trainingHelperColumn"] and not flag("training_helper_columns"):
                return False
            return True

        def prune(q, prefix=None):
            q["leftFeatures"] = [f for f in q["leftFeatures"] if keep((prefix or "") + f["name"])]
            for j in q["joins"]:
                prune(j["query"], j.get("prefix"))

        prune(cq)

        # Features the user did not select but asked for (primary keys, event time) are added
        # by the server with useFullyQualifiedName=true: the query constructor then names them
        # <project>_<fg name>_<fg version>_<feature> (FeatureViewController / ConstructorController).
        def add_fq(q, wanted):
            qfg = self.s["feature_groups"][str(q["_fgId"])]
            selected = {f["name"] for f in json.loads(json.dumps(fv["_query"]))["leftFeatures"]} \
                if q is cq else {f["name"] for f in q["leftFeatures"]}
            present = {f["name"] for f in q["leftFeatures"]}
            for fname in wanted(qfg):
                if fname in present:
                    continue
                feat = dict(next(f for f in qfg["features"] if f["name"] == fname))
                if fname not in selected:
                    feat["useFullyQualifiedName"] = True
                q["leftFeatures"].append(feat)
            for j in q["joins"]:
                add_fq(j["query"], wanted)

        if flag("with_primary_keys"):
            add_fq(cq, lambda g: [f["name"] for f in g["features"] if f.get("primary")])
        if flag("with_event_time"):
            add_fq(cq, lambda g: [g["eventTime"]] if g.get("eventTime") else [])

        start, end = req.q("start_time"), req.q("end_time")
        if (start or end) and not fg.get("eventTime"):
            raise HttpError(400, 270172, "Event time feature not available in the left feature group")
        et = next((f for f in fg["features"] if f["name"] == fg.get("eventTime")), None)

        def ts(ms):
            return _dt.datetime.fromtimestamp(int(ms) / 1000, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

        flt = cq.get("filter")
        for bound, cond in ((start, "GREATER_THAN_OR_EQUAL"), (end, "LESS_THAN")):
            if bound:
                new = {"feature": dict(et), "condition": cond, "value": ts(bound)}
                flt = ({"type": "SINGLE", "leftFilter": new} if flt is None
                       else {"type": "AND", "leftFilter": new, "rightLogic": flt})
        cq["filter"] = flt
        return self._query_out(cq)

    def _td_key(self, name, version, tdv) -> str:
        return f"{name}/{int(version)}/{int(tdv)}"

    def r_td_create(self, req, pid, fsid, name, version):
        """POST project/{pid}/featurestores/{fsid}/featureview/{name}/version/{version}/trainingdatasets"""
        self._check_fs(pid, fsid)
        fv = self._fv(name, version)
        body = req.json()
        existing = [int(k.split("/")[2]) for k in self.s["training_datasets"] if k.startswith(f"{name}/{int(version)}/")]
        tdv = body.get("version") or (max(existing) + 1 if existing else 1)
        if self._td_key(name, version, tdv) in self.s["training_datasets"]:
            raise HttpError(400, 270057, f"Training dataset version {tdv} already exists")
        td = dict(body)
        td.update({"id": self._next_id("td"), "version": tdv, "name": f"{name}_{version}",
                   "featurestoreId": self.s["featurestore_id"], "featurestoreName": self.fs_name,
                   "created": _now_iso(), "creator": self._user_json(), "type": "trainingDatasetDTO",
                   "location": f"hopsfs://namenode.service.consul:8020/Projects/{self.fake.project_name}/"
                               f"{self.fake.project_name}_Training_Datasets/{name}_{version}_{tdv}",
                   "splits": body.get("splits") or [],
                   "trainingDatasetType": body.get("trainingDatasetType") or "HOPSFS_TRAINING_DATASET"})
        td["features"] = [dict({k: v for k, v in f.items() if not k.startswith("_")}) for f in fv["features"]]
        self.s["training_datasets"][self._td_key(name, version, tdv)] = td
        return td

    def r_td_get(self, req, pid, fsid, name, version, tdv):
        """GET project/{pid}/featurestores/{fsid}/featureview/{name}/version/{version}/trainingdatasets/version/{tdv}"""
        self._check_fs(pid, fsid)
        self._fv(name, version)
        td = self.s["training_datasets"].get(self._td_key(name, version, tdv))
        if td is None:
            raise HttpError(404, E_TD_NOT_FOUND, "Training dataset wasn't found.")
        return td

    # ================================================================ statistics (stored as posted)
    def _stats_post(self, req, owner: str):
        body = req.json()
        body = dict(body, id=self._next_id("stat"), type="statisticsDTO")
        self.s.setdefault("statistics", {}).setdefault(owner, []).append(body)
        return body

    def _stats_get(self, req, owner: str):
        items = list(reversed(self.s.get("statistics", {}).get(owner, [])))
        # statistics_fixtures.json "get_with_no_items" when nothing was computed
        return {"count": len(items), "items": items[:1] if items else [], "type": "statisticsDTO"}

    def r_td_stats_post(self, req, pid, fsid, name, version, tdv):
        """POST project/{pid}/featurestores/{fsid}/featureview/{name}/version/{version}/trainingdatasets/version/{tdv}/statistics"""
        self._check_fs(pid, fsid)
        self._fv(name, version)
        return self._stats_post(req, f"td:{name}/{version}/{tdv}")

    # ================================================================ jobs / executions
    def _create_job(self, name: str, job_type: str, config: dict, kind: str = "user", fg_id=None) -> dict:
        job = {"id": self._next_id("job"), "name": name, "creationTime": _now_iso(), "config": config,
               "jobType": job_type, "creator": self._user_json(), "type": "jobDTO",
               "href": f"https://{self.fake.host}/hopsworks-api/api/project/{self.s['project']['id']}/jobs/{name}",
               "_fake_kind": kind, "_fake_fg_id": fg_id}
        self.s["jobs"][name] = job
        return job

    def _job(self, name: str) -> dict:
        job = self.s["jobs"].get(name)
        if job is None:
            raise HttpError(404, E_JOB_NOT_FOUND, f"Job {name} not found", "Job not found.")
        return job

    def _job_out(self, job: dict) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def r_job_get(self, req, pid, name):
        """GET project/{pid}/jobs/{name}"""
        self._check_project(pid)
        return self._job_out(self._job(name))

    def _ex_out(self, ex: dict) -> dict:
        return {k: v for k, v in ex.items() if not k.startswith("_")}

    def r_execution_start(self, req, pid, name):
        """POST project/{pid}/jobs/{name}/executions"""
        self._check_project(pid)
        job = self._job(name)
        ctype = req.headers.get("content-type", req.headers.get("Content-Type", ""))
        if ctype.startswith("application/json"):
            body = req.json() or {}
            args = body.get("args")
        elif ctype.startswith("text/plain") or not req.body:
            args = req.body.decode() if req.body else None
        else:
            raise HttpError(415, None, "HTTP 415 Unsupported Media Type")
        exid = self._next_id("execution")
        logs = f"/Projects/{self.fake.project_name}/Logs/{job['jobType']}/{name}/{exid}"
        ex = {"id": exid, "jobName": name, "state": "INITIALIZING", "finalStatus": "UNDEFINED",
              "submissionTime": _now_iso(), "stdoutPath": f"{logs}/stdout.log", "stderrPath": f"{logs}/stderr.log",
              "appId": f"application_{_now_ms()}_{exid:04d}", "hdfsUser": f"{self.fake.project_name}__{self.fake.username}",
              "args": args, "progress": 0.0, "user": self._user_json(), "filesToRemove": [], "duration": 0,
              "monitoring": None, "type": "executionDTO",
              "href": f"https://{self.fake.host}/hopsworks-api/api/project/{pid}/jobs/{name}/executions/{exid}",
              "_polls": 0}
        forced = self.s.get("fail_next", {}).pop(name, None)
        if forced:
            ex["_fail_as"] = forced
        self.s["executions"][str(exid)] = ex
        started = self.s["counters"]["jobs_started"]
        started[name] = started.get(name, 0) + 1
        return 201, self._ex_out(ex), {}

    def _advance(self, ex: dict) -> None:
        if ex["state"] in ("FINISHED", "FAILED", "KILLED"):
            return
        ex["_polls"] += 1
        if ex["_polls"] >= self.fake.polls_to_finish:
            _finish_execution(self.fake, self.s, ex)
        else:
            ex["state"] = "RUNNING"
            ex["progress"] = 0.5

    def r_execution_get(self, req, pid, name, exid):
        """GET project/{pid}/jobs/{name}/executions/{exid}"""
        self._check_project(pid)
        self._job(name)
        ex = self.s["executions"].get(exid)
        if ex is None or ex["jobName"] != name:
            raise HttpError(404, 130013, f"Execution {exid} not found")
        self._advance(ex)
        return self._ex_out(ex)

    def r_executions_list(self, req, pid, name):
        """GET project/{pid}/jobs/{name}/executions"""
        self._check_project(pid)
        self._job(name)
        items = [e for e in self.s["executions"].values() if e["jobName"] == name]
        items.sort(key=lambda e: e["id"], reverse=True)
        offset, limit = int(req.q("offset", 0)), req.q("limit")
        items = items[offset:offset + int(limit)] if limit else items[offset:]
        return {"count": len(items), "items": [self._ex_out(e) for e in items], "type": "executionDTO"}

    # ================================================================ query constructor (server side SQL + HQS payload)
    def r_query(self, req, pid):
        """PUT project/{pid}/featurestores/query"""
        self._check_project(pid)
        q = req.json()
        hqs = req.q("hqs", "false").lower() == "true"
        return _construct_query(self, q, hqs)

    # ================================================================ model registry
    def _check_registry(self, pid, rid) -> None:
        self._check_project(pid)
        if str(rid) != str(self.s["project"]["id"]):
            raise HttpError(404, 360003, f"Model registry {rid} not found")

    def _model_out(self, m: dict) -> dict:
        out = dict(m)
        vdir = _hopsfs_local(self.fake, f"/Projects/{self.fake.project_name}/Models/{m['name']}/{m['version']}")
        out["inputExample"] = "input_example.json" if os.path.exists(os.path.join(vdir, "input_example.json")) else None
        out["modelSchema"] = "model_schema.json" if os.path.exists(os.path.join(vdir, "model_schema.json")) else None
        return out

    def r_model_get(self, req, pid, rid, mid):
        """GET project/{pid}/modelregistries/{rid}/models/{mid}"""
        self._check_registry(pid, rid)
        m = self.s["models"].get(mid)
        if m is None:
            raise HttpError(404, E_MODEL_NOT_FOUND, "Model not found", f"model: {mid}")
        return self._model_out(m)

    def r_model_put(self, req, pid, rid, mid):
        """PUT project/{pid}/modelregistries/{rid}/models/{mid}"""
        self._check_registry(pid, rid)
        body = req.json()
        name, version = body["name"], int(body["version"])
        if mid != f"{name}_{version}":
            raise HttpError(400, 360001, f"Model id {mid} does not match {name}_{version}")
        vdir = _hopsfs_local(self.fake, f"/Projects/{self.fake.project_name}/Models/{name}/{version}")
        if not os.path.isdir(vdir):
            raise HttpError(400, 360005, f"Model version folder Models/{name}/{version} does not exist")
        u = self.s["user"]
        m = {k: v for k, v in body.items() if k not in ("tags",)}
        m.update({"id": mid, "name": name, "version": version, "created": _now_ms(), "creator": u["email"],
                  "userFullName": f"{u['firstName']} {u['lastName']}", "projectName": self.fake.project_name,
                  "modelRegistryId": int(rid), "framework": body.get("framework") or "PYTHON",
                  "trainingDatasetVersion": body.get("trainingDatasetVersion") or 0, "type": "modelDTO",
                  "href": f"https://{self.fake.host}/hopsworks-api/api/project/{pid}/modelregistries/{rid}/models/{mid}"})
        self.s["models"][mid] = m
        return self._model_out(m)

    def r_model_list(self, req, pid, rid):
        """GET project/{pid}/modelregistries/{rid}/models"""
        self._check_registry(pid, rid)
        items = list(self.s["models"].values())
        for flt in req.qlist("filter_by"):
            key, _, val = flt.partition(":")
            if key == "name_eq":
                items = [m for m in items if m["name"] == val]
            elif key == "name_like":
                items = [m for m in items if val in m["name"]]
            else:
                raise HttpError(400, E_UNHANDLED, f"FakeHopsworks: filter_by {key} not implemented")
        sort = req.q("sort_by")
        if sort:
            metric, _, direction = sort.partition(":")
            items = [m for m in items if metric in (m.get("metrics") or {})]
            items.sort(key=lambda m: m["metrics"][metric], reverse=direction.lower() == "desc")
        else:
            items.sort(key=lambda m: (m["name"], m["version"]))
        offset = int(req.q("offset", 0))
        limit = req.q("limit")
        total = len(items)
        items = items[offset:offset + int(limit)] if limit else items[offset:]
        return {"count": total if items else 0, "items": [self._model_out(m) for m in items], "type": "modelDTO"}

    def r_model_delete(self, req, pid, rid, mid):
        """DELETE project/{pid}/modelregistries/{rid}/models/{mid}"""
        self._check_registry(pid, rid)
        m = self.s["models"].pop(mid, None)
        if m is None:
            raise HttpError(404, E_MODEL_NOT_FOUND, "Model not found")
        import shutil

        shutil.rmtree(_hopsfs_local(self.fake, f"/Projects/{self.fake.project_name}/Models/{m['name']}/{m['version']}"),
                      ignore_errors=True)
        return None

    # ================================================================ datasets (HopsFS)
    def _inode(self, path: str) -> dict:
        local = _hopsfs_local(self.fake, path)
        absp = _hopsfs_abs(self.fake, path)
        if not os.path.exists(local):
            raise HttpError(404, E_DATASET_NOT_FOUND, "Inode not found", f"path: {absp}")
        st = os.stat(local)
        isdir = os.path.isdir(local)
        d = {"type": "inodeDTO", "href": f"https://{self.fake.host}/hopsworks-api/api/project/"
                                         f"{self.s['project']['id']}/dataset{absp}",
             "attributes": {"name": os.path.basename(absp), "path": absp, "dir": isdir,
                            "size": 0 if isdir else st.st_size, "owner": f"{self.fake.project_name}__{self.fake.username}",
                            "group": self.fake.project_name, "permission": "rwxrwx---",
                            "modificationTime": _dt.datetime.fromtimestamp(st.st_mtime, _dt.timezone.utc).isoformat(),
                            "accessTime": _dt.datetime.fromtimestamp(st.st_atime, _dt.timezone.utc).isoformat(),
                            "underConstruction": False},
             "zipState": "NONE"}
        parts = absp.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "Projects":  # a top level dataset
            d.update({"type": "datasetDTO", "name": parts[2], "datasetType": "DATASET", "searchable": True,
                      "publicDataset": 0, "sharedWith": 0, "description": ""})
        return d

    def r_dataset(self, req, pid, path):
        """GET project/{pid}/dataset/{*path}"""
        self._check_project(pid)
        action = (req.q("action") or "").lower()
        if action == "listing":
            local = _hopsfs_local(self.fake, path)
            if not os.path.isdir(local):
                raise HttpError(404, E_DATASET_NOT_FOUND, "Inode not found")
            names = sorted(os.listdir(local))
            offset, limit = int(req.q("offset", 0)), int(req.q("limit", 1000))
            items = [self._inode(_hopsfs_abs(self.fake, path) + "/" + n) for n in names[offset:offset + limit]]
            return {"count": len(names), "items": items, "type": "inodeDTO"}
        if action in ("", "stat"):
            return self._inode(path)
        raise HttpError(400, E_UNHANDLED, f"FakeHopsworks: dataset GET action {action} not implemented")

    def r_dataset_post(self, req, pid, path):
        """POST project/{pid}/dataset/{*path}"""
        self._check_project(pid)
        action = (req.q("action") or "").lower()
        local = _hopsfs_local(self.fake, path)
        if action == "create":
            if os.path.exists(local):
                raise HttpError(400, 110004, "Destination already exists.")
            parent = os.path.dirname(local)
            if not os.path.isdir(parent):
                raise HttpError(404, E_DATASET_NOT_FOUND, "Parent directory not found")
            os.makedirs(local)
            return 201, self._inode(path), {}
        if action in ("move", "copy"):
            if not os.path.exists(local):
                raise HttpError(404, E_DATASET_NOT_FOUND, "Inode not found")
            dest = req.q("destination_path")
            dlocal = _hopsfs_local(self.fake, dest)
            if os.path.exists(dlocal):
                raise HttpError(400, 110004, "Destination already exists.")
            import shutil

            if action == "move":
                shutil.move(local, dlocal)
            elif os.path.isdir(local):
                shutil.copytree(local, dlocal)
            else:
                shutil.copy2(local, dlocal)
            return 204, None, {}
        raise HttpError(400, E_UNHANDLED, f"FakeHopsworks: dataset POST action {action} not implemented")

    def r_dataset_delete(self, req, pid, path):
        """DELETE project/{pid}/dataset/{*path}"""
        self._check_project(pid)
        local = _hopsfs_local(self.fake, path)
        if not os.path.exists(local):
            raise HttpError(404, E_DATASET_NOT_FOUND, "Inode not found")
        parts = _hopsfs_abs(self.fake, path).strip("/").split("/")
        if len(parts) <= 3:
            raise HttpError(400, 110013, "Top level datasets cannot be removed with this call")
        import shutil

        if os.path.isdir(local):
            shutil.rmtree(local)
        else:
            os.remove(local)
        return 204, None, {}

    def r_dataset_upload(self, req, pid, path):
        """POST project/{pid}/dataset/upload/{*path}"""
        self._check_project(pid)
        fields, files = req.form()
        if "file" not in files:
            raise HttpError(400, 110001, "No file in upload request")
        dest_dir = _hopsfs_local(self.fake, path)
        if not os.path.isdir(dest_dir):
            raise HttpError(404, E_DATASET_NOT_FOUND, f"Upload directory {path} not found")
        fname = fields.get("flowFilename") or files["file"][0]
        total = max(int(fields.get("flowTotalChunks", 1)), 1)  # an empty file is sent as one empty chunk with flowTotalChunks=0
        number = int(fields.get("flowChunkNumber", 1))
        ident = fields.get("flowIdentifier", fname)
        parts_dir = self.fake.store.path("uploads", hashlib.sha1(f"{path}/{ident}".encode()).hexdigest())
        os.makedirs(parts_dir, exist_ok=True)
        with open(os.path.join(parts_dir, f"{number:08d}"), "wb") as f:
            f.write(files["file"][1])
        if len(os.listdir(parts_dir)) == total:
            with open(os.path.join(dest_dir, fname), "wb") as out:
                for n in sorted(os.listdir(parts_dir)):
                    with open(os.path.join(parts_dir, n), "rb") as f:
                        out.write(f.read())
            import shutil

            shutil.rmtree(parts_dir)
        return None

    def r_dataset_download(self, req, pid, path):
        """GET project/{pid}/dataset/download/with_auth/{*path}"""
        self._check_project(pid)
        local = _hopsfs_local(self.fake, path)
        if not os.path.isfile(local):
            raise HttpError(404, E_DATASET_NOT_FOUND, "Inode not found")
        with open(local, "rb") as f:
            return 200, f.read(), {"Content-Type": "application/octet-stream"}


def _match(pattern: list[str], segs: list[str]):
    params = {}
    for i, p in enumerate(pattern):
        if p.startswith("{*"):
            if i >= len(segs):
                return None
            params[p[2:-1]] = "/".join(segs[i:])
            return params
        if i >= len(segs):
            return None
        if p.startswith("{"):
            params[p[1:-1]] = segs[i]
        elif p != segs[i]:
            return None
    if len(pattern) != len(segs):
        return None
    return params


# ---------------------------------------------------------------------------
# Query constructor: Query JSON -> SQL + HQS payload (what the server builds)
# ---------------------------------------------------------------------------

def _refuse_joins(q: dict) -> None:
    """This project's queries read one feature group; a join would need a query constructor the fake does not have."""
    if q.get("joins"):
        raise HttpError(400, E_UNHANDLED, "FakeHopsworks does not implement joins")


_COND = {"GREATER_THAN_OR_EQUAL": ">=", "GREATER_THAN": ">", "NOT_EQUALS": "<>", "EQUALS": "=",
         "LESS_THAN_OR_EQUAL": "<=", "LESS_THAN": "<", "IN": "IN", "LIKE": "LIKE"}


def _construct_query(rest: _RestServer, q: dict, hqs: bool) -> dict:
    _refuse_joins(q)
    s = rest.s
    fake = rest.fake
    project = fake.project_name
    aliases: list = []  # (alias, fg)
    select_cols: list[str] = []    # duckdb-SQL select expressions
    hive_cols: list[str] = []
    features_payload: dict = {}

    def fg_of(fgj: dict) -> dict:
        fg = s["feature_groups"].get(str(fgj.get("id")))
        if fg is None:
            raise HttpError(404, E_FG_NOT_FOUND, f"Feature group {fgj.get('name')} not found")
        return fg

    def walk(query: dict, prefix: str | None):
        fg = fg_of(query["leftFeatureGroup"])
        alias = f"fg{len(aliases)}"
        aliases.append((alias, fg, query))
        fg_feats = {f["name"]: f for f in fg["features"]}
        tname = f"{project}.{fg['name']}_{fg['version']}"
        features_payload.setdefault(tname, [{"name": f["name"], "type": f["type"]} for f in fg["features"]])
        for feat in query.get("leftFeatures") or []:
            fname = feat["name"] if isinstance(feat, dict) else feat
            if fname not in fg_feats:
                raise HttpError(400, 270150, f"Feature {fname} not found in feature group {fg['name']}")
            if isinstance(feat, dict) and feat.get("useFullyQualifiedName"):
                # the server aliases features it adds itself (primary keys / event time the
                # user did not select) with their fully qualified name
                out = f"{project}_{fg['name']}_{fg['version']}_{fname}"
            else:
                out = (prefix or "") + fname
            select_cols.append(f'"{alias}"."{fname}" AS "{out}"')
            hive_cols.append(f"`{alias}`.`{fname}` `{out}`")
        for j in query.get("joins") or []:
            walk(j["query"], j.get("prefix"))

    walk(q, None)
    base_alias, base_fg, _ = aliases[0]

    def table(fg):
        return f'"{project}.{fg["name"]}_{fg["version"]}"'

    from_sql = f'{table(base_fg)} "{base_alias}"'
    hive_from = f"`{rest.fs_name}`.`{base_fg['name']}_{base_fg['version']}` `{base_alias}`"

    def alias_of_feature(feat: dict) -> str:
        fgid = feat.get("featureGroupId")
        for a, fg, _ in aliases:
            if fgid is not None and str(fg["id"]) == str(fgid):
                return a
        for a, fg, _ in aliases:
            if any(f["name"] == feat["name"] for f in fg["features"]):
                return a
        raise HttpError(400, 270150, f"Feature {feat['name']} of the filter is not in the query")

    def filter_sql(flt: dict | None, logic: dict | None) -> str | None:
        if flt:
            feat = flt["feature"]
            a = alias_of_feature(feat)
            cond = _COND[flt["condition"]]
            val = flt["value"]
            ftype = (feat.get("type") or "string").lower()
            if cond == "IN":
                vals = json.loads(val) if isinstance(val, str) else val
                lit = "(" + ", ".join(_sql_lit(v, ftype) for v in vals) + ")"
            else:
                lit = _sql_lit(val, ftype)
            return f'"{a}"."{feat["name"]}" {cond} {lit}'
        if logic:
            t = logic["type"]
            left = filter_sql(logic.get("leftFilter"), logic.get("leftLogic"))
            right = filter_sql(logic.get("rightFilter"), logic.get("rightLogic"))
            if t == "SINGLE":
                return left or right
            op = " AND " if t == "AND" else " OR "
            return "(" + op.join(x for x in (left, right) if x) + ")"
        return None

    wheres = []
    f = filter_sql(None, q.get("filter"))
    if f:
        wheres.append(f)
    for _alias, _fg, sub in aliases:
        if sub is q:
            continue
        sf = filter_sql(None, sub.get("filter"))
        if sf:
            wheres.append(sf)
    for key, op in (("leftFeatureGroupStartTime", ">="), ("leftFeatureGroupEndTime", "<=")):
        if q.get(key) is not None and base_fg.get("eventTime"):
            ts = _dt.datetime.fromtimestamp(int(q[key]) / 1000, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            wheres.append(f'"{base_alias}"."{base_fg["eventTime"]}" {op} TIMESTAMP \'{ts}\'')
    sql = "SELECT " + ", ".join(select_cols) + " FROM " + from_sql
    if wheres:
        sql += " WHERE " + " AND ".join(wheres)
    if q.get("limit"):
        sql += f" LIMIT {int(q['limit'])}"
    hive = "SELECT " + ", ".join(hive_cols) + "\nFROM " + hive_from
    if wheres:
        hive += "\nWHERE " + " AND ".join(w.replace('"', "`") for w in wheres)
    out = {"query": hive, "queryOnline": hive.replace(f"`{rest.fs_name}`", f"`{project}`"),
           "hudiCachedFeatureGroups": [
               {"alias": a, "featureGroup": rest._fg_out(fg), "leftFeatureGroupStartTimestamp": None,
                "leftFeatureGroupEndTimestamp": None} for a, fg, _ in aliases],
           "onDemandFeatureGroups": [], "type": "fsQueryDTO"}
    if hqs:
        payload = {"query_string": sql, "features": features_payload,
                   "filters": None, "connectors": {f"{project}.{fg['name']}_{fg['version']}":
                                                   {"feature_group_id": fg["id"], "time_travel_type": "hudi"}
                                                   for _, fg, _ in aliases}}
        payload_s = json.dumps(payload)
        out["hqsPayload"] = payload_s
        out["hqsPayloadSignature"] = hmac.new(base64.b64decode(s["hqs_secret"]), payload_s.encode(),
                                              hashlib.sha256).hexdigest()
    return out


def _sql_lit(val, ftype: str) -> str:
    if val is None:
        return "NULL"
    if ftype in ("bigint", "int", "smallint", "tinyint", "double", "float") or ftype.startswith("decimal"):
        return str(val)
    if ftype == "boolean":
        return "TRUE" if str(val).lower() in ("true", "1") else "FALSE"
    if ftype == "timestamp":
        return f"TIMESTAMP '{val}'"
    if ftype == "date":
        return f"DATE '{val}'"
    return "'" + str(val).replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# Kafka seam
# ---------------------------------------------------------------------------

def _kafka_error(code_name: str, reason: str):
    from confluent_kafka import KafkaError, KafkaException

    return KafkaException(KafkaError(getattr(KafkaError, code_name), reason))


def _check_kafka_config(fake: FakeHopsworks, config: dict, who: str) -> None:
    """Do what librdkafka does at construction: read the SSL files it is pointed at."""
    if config.get("bootstrap.servers") != fake.kafka_bootstrap:
        # librdkafka would just fail to connect later; the fake refuses at once
        raise _kafka_error("_INVALID_ARG", f"FakeKafka: unknown bootstrap.servers {config.get('bootstrap.servers')!r}")
    if config.get("security.protocol") != "SSL":
        raise _kafka_error("_INVALID_ARG", "FakeKafka: the cluster only accepts security.protocol=SSL")
    paths = {}
    for key in ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location"):
        p = config.get(key)
        if not p:
            raise _kafka_error("_INVALID_ARG", f"Failed to create {who}: {key} not set (SSL handshake would fail)")
        try:
            with open(p, "rb") as f:
                paths[key] = f.read()
        except OSError as e:
            raise _kafka_error("_INVALID_ARG", f"Failed to create {who}: {key} failed: {e}") from e
    trusted_ca = fake.state()["cert_material"]["caChain"]
    try:
        _check_client_identity(paths["ssl.ca.location"], paths["ssl.certificate.location"],
                               paths["ssl.key.location"], trusted_ca, f"Failed to create {who}")
    except ValueError as e:
        raise _kafka_error("_SSL", str(e)) from e


class _FakeMessage:
    def __init__(self, topic, partition, offset, key, value, headers):
        self._t, self._p, self._o, self._k, self._v, self._h = topic, partition, offset, key, value, headers

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def key(self):
        return self._k

    def value(self):
        return self._v

    def headers(self):
        return list((self._h or {}).items())

    def error(self):
        return None

    def timestamp(self):
        return (1, _now_ms())

    def __len__(self):
        return len(self._v or b"")


def _topic_len(fake: FakeHopsworks, topic: str) -> int | None:
    """High watermark of a topic (records are appended to kafka/<topic>.jsonl, counted in <topic>.count)."""
    if not os.path.exists(fake.store.path("kafka", f"{topic}.jsonl")):
        return None
    try:
        with open(fake.store.path("kafka", f"{topic}.count")) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def _make_producer_class(fake: FakeHopsworks):
    class FakeProducer:
        """confluent_kafka.Producer stand-in; records land in <state>/kafka/<topic>.jsonl.

        Like librdkafka, produce() only queues; delivery (append to the topic, offsets, the
        delivery callbacks) happens in poll()/flush()."""

        def __init__(self, config: dict | None = None, **kw):
            config = dict(config or {}, **kw)
            _check_kafka_config(fake, config, "producer")
            self.config = config
            self._queue: list = []
            self._schemas: dict = {}
            self.delivered = 0

        def produce(self, topic, value=None, key=None, partition=-1, on_delivery=None, callback=None,
                    timestamp=0, headers=None):
            if isinstance(key, str):
                key = key.encode()
            if isinstance(value, str):
                value = value.encode()
            hdrs = {}
            if headers:
                items = headers.items() if isinstance(headers, dict) else headers
                for k, v in items:
                    hdrs[k] = v.decode() if isinstance(v, bytes) else v
            self._queue.append((topic, key, value, hdrs, callback or on_delivery))

        def _decode(self, hdrs, value):
            import fastavro

            fgid = str(hdrs.get("featureGroupId"))
            if fgid not in self._schemas:
                st = fake.state()
                fg = st["feature_groups"].get(fgid)
                subj = st["subjects"].get(f"{fg['name']}_{fg['version']}", [None])[-1] if fg else None
                self._schemas[fgid] = fastavro.parse_schema(json.loads(subj["schema"])) if subj else None
            schema = self._schemas[fgid]
            if schema is None:
                return {"_undecodable": f"no subject for featureGroupId {fgid}"}
            try:
                rec = fastavro.schemaless_reader(io.BytesIO(value), schema)
                return json.loads(json.dumps(rec, default=str))
            except Exception as e:  # noqa: BLE001
                return {"_undecodable": repr(e)}

        def poll(self, timeout=None):
            if not self._queue:
                return 0
            queue, self._queue = self._queue, []
            delivered = []
            with fake.store.locked():
                by_topic: dict = {}
                for item in queue:
                    by_topic.setdefault(item[0], []).append(item)
                for topic, items in by_topic.items():
                    base = _topic_len(fake, topic)
                    if base is None:
                        for *_, cb in items:
                            if cb is not None:
                                from confluent_kafka import KafkaError

                                cb(KafkaError(KafkaError._UNKNOWN_TOPIC, f"Unknown topic {topic}"), None)
                        continue
                    lines = []
                    for i, (_, key, value, hdrs, cb) in enumerate(items):
                        rec = {"topic": topic, "partition": 0, "offset": base + i,
                               "key": key.decode() if key else None, "headers": hdrs,
                               "value_b64": base64.b64encode(value or b"").decode(), "pid": os.getpid(),
                               "timestamp": _now_ms(), "value": self._decode(hdrs, value or b"")}
                        lines.append(json.dumps(rec, default=str))
                        delivered.append((cb, _FakeMessage(topic, 0, base + i, key, value, hdrs)))
                    with open(fake.store.path("kafka", f"{topic}.jsonl"), "a") as f:
                        f.write("\n".join(lines) + "\n")
                    with open(fake.store.path("kafka", f"{topic}.count"), "w") as f:
                        f.write(str(base + len(items)))
            for cb, msg in delivered:
                self.delivered += 1
                if cb is not None:
                    cb(None, msg)
            return len(delivered)

        def flush(self, timeout=None):
            self.poll(0)
            return 0

        def __len__(self):
            return len(self._queue)

        def list_topics(self, topic=None, timeout=-1):
            return _cluster_metadata(fake, topic)

    return FakeProducer


class _TopicMeta:
    def __init__(self, name, partitions):
        self.topic = name
        self.partitions = partitions
        self.error = None


class _PartitionMeta:
    def __init__(self, pid):
        self.id = pid
        self.leader = 0
        self.replicas = [0]
        self.isrs = [0]
        self.error = None


class _ClusterMeta:
    def __init__(self, topics):
        self.topics = topics
        self.brokers = {}
        self.cluster_id = "fake-kafka"
        self.controller_id = 0


def _cluster_metadata(fake: FakeHopsworks, topic=None):
    topics = {}
    for name in os.listdir(fake.store.path("kafka")):
        if not name.endswith(".jsonl"):
            continue
        t = name[:-len(".jsonl")]
        if topic is None or t == topic:
            topics[t] = _TopicMeta(t, {0: _PartitionMeta(0)})
    return _ClusterMeta(topics)


def _make_consumer_class(fake: FakeHopsworks):
    class FakeConsumer:
        """confluent_kafka.Consumer stand-in: metadata and watermark offsets only."""

        def __init__(self, config: dict | None = None, **kw):
            config = dict(config or {}, **kw)
            _check_kafka_config(fake, config, "consumer")
            if "group.id" not in config:
                raise _kafka_error("_INVALID_ARG", "Failed to create consumer: group.id not set")
            self.config = config
            self.closed = False

        def list_topics(self, topic=None, timeout=-1):
            return _cluster_metadata(fake, topic)

        def get_watermark_offsets(self, partition, timeout=None, cached=False):
            topic_file = os.path.join("kafka", f"{partition.topic}.jsonl")
            if not os.path.exists(fake.store.path(topic_file)):
                raise _kafka_error("UNKNOWN_TOPIC_OR_PART", "Broker: Unknown topic or partition")
            return 0, _topic_len(fake, partition.topic)

        def close(self):
            self.closed = True

    return FakeConsumer


# ---------------------------------------------------------------------------
# Arrow Flight seam (the Hopsworks Query Service)
# ---------------------------------------------------------------------------

def _flight_error(kind: str, msg: str):
    import pyarrow.flight as fl

    cls = {"server": fl.FlightServerError, "unavailable": fl.FlightUnavailableError,
           "unauthenticated": fl.FlightUnauthenticatedError}[kind]
    return cls(msg)


def _make_flight_client_class(fake: FakeHopsworks):
    import pyarrow as pa
    import pyarrow.flight as fl

    class FakeFlightClient:
        """pyarrow.flight.FlightClient stand-in for the Hopsworks Query Service."""

        def __init__(self, location, tls_root_certs=None, cert_chain=None, private_key=None,
                     override_hostname=None, middleware=None, write_size_limit_bytes=None,
                     disable_server_verification=False, generic_options=None):
            loc = location.uri.decode() if hasattr(location, "uri") else str(location)
            parts = urllib.parse.urlsplit(loc)
            self.location = loc
            self._problem = None
            if parts.scheme != "grpc+tls" or parts.hostname != fake.flight_host or parts.port != 5005:
                self._problem = ("unavailable", f"failed to connect to all addresses; last error: "
                                                f"UNKNOWN: {loc}: Name or service not known")
            else:
                try:
                    # grpc checks the client's TLS material when the channel connects
                    _check_client_identity(tls_root_certs if isinstance(tls_root_certs, bytes) else (tls_root_certs or "").encode(),
                                           (cert_chain or "").encode() if isinstance(cert_chain, str) else (cert_chain or b""),
                                           (private_key or "").encode() if isinstance(private_key, str) else (private_key or b""),
                                           fake.state()["cert_material"]["caChain"], "TLS handshake")
                except ValueError as e:
                    self._problem = ("unavailable", f"failed to connect to all addresses; {e}")
            self._registered = False

        def _check(self):
            if self._problem:
                raise _flight_error(*self._problem)

        def list_actions(self, options=None):
            self._check()
            acts = [fl.ActionType("healthcheck", "health check"),
                    fl.ActionType("register-client-certificates", "register client certificates"),
                    fl.ActionType("create-training-dataset", "create training dataset")]
            return acts  # an HQS without `get-version`: the SDK registers its key stores once

        def _verify_certs_json(self, raw: bytes):
            try:
                certs = json.loads(raw)
                pw = certs["cert_key"]
                _check_jks(certs["kstore"], pw, "kstore")
                _check_jks(certs["tstore"], pw, "tstore")
            except Exception as e:  # noqa: BLE001
                raise _flight_error("server", f"Invalid client certificates: {e}") from e

        def do_action(self, action, options=None):
            self._check()
            atype = action.type if hasattr(action, "type") else action[0]
            body = action.body.to_pybytes() if hasattr(action, "body") else action[1]
            if atype == "healthcheck":
                return iter([])
            if atype == "register-client-certificates":
                self._verify_certs_json(body)
                self._registered = True
                return iter([])
            raise _flight_error("server", f"FakeHQS: action {atype} not implemented")

        def _auth(self, options):
            """Who may run a query: a client that registered its key stores (register-client-certificates)."""
            if not self._registered:
                raise _flight_error("server", "Please register client certificates first.")
            return dict(getattr(options, "_fake_headers", None) or [])

        def get_flight_info(self, descriptor, options=None):
            self._check()
            cmd = descriptor.command
            schema = pa.schema([])
            ep = fl.FlightEndpoint(fl.Ticket(cmd), [fl.Location(fake_location(fake))])
            return fl.FlightInfo(schema, descriptor, [ep], -1, -1)

        def do_get(self, ticket, options=None):
            self._check()
            headers = self._auth(options)
            payload = ticket.ticket
            sig = headers.get(b"hopsworks-signature")
            secret = base64.b64decode(fake.state()["hqs_secret"])
            want = hmac.new(secret, payload, hashlib.sha256).hexdigest().encode()
            if sig is not None and not hmac.compare_digest(sig, want):
                raise _flight_error("server", "Invalid payload signature")
            table = _execute_hqs(fake, json.loads(payload))
            return _FakeReader(table)

        def close(self):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.close()

    return FakeFlightClient


def fake_location(fake: FakeHopsworks) -> str:
    return f"grpc+tls://{fake.flight_host}:5005"


class _FakeReader:
    def __init__(self, table):
        self._table = table
        self._batches = iter(table.to_batches())

    def read_all(self):
        return self._table

    def read_pandas(self, **kw):
        return self._table.to_pandas(**kw)

    def read_chunk(self):
        b = next(self._batches)  # StopIteration at the end, as FlightStreamReader

        class _Chunk:
            data = b
            app_metadata = None

        return _Chunk()

    @property
    def schema(self):
        return self._table.schema

    def cancel(self):
        pass

    def close(self):
        pass


def _execute_hqs(fake: FakeHopsworks, payload: dict):
    """Run the HQS payload's DuckDB SQL against the offline tables."""
    import duckdb

    with fake.store.tx() as s:
        s["counters"]["flight_queries"] = s["counters"].get("flight_queries", 0) + 1
        fgs = {f"{fake.project_name}.{fg['name']}_{fg['version']}": fg for fg in s["feature_groups"].values()}
    con = duckdb.connect()
    for tname in payload["features"]:
        fg = fgs.get(tname)
        if fg is None:
            raise _flight_error("server", f"No data found for featuregroup {tname}. Detail: unknown table")
        name, version = tname.split(".", 1)[1].rsplit("_", 1)
        t = _read_offline(fake, fake.project_name, name, int(version))
        if t is None:
            raise _flight_error("server", f"No data found for featuregroup {tname}. Detail: the offline table "
                                          f"has no commits yet (the materialization job has not run)")
        con.register(tname, t)
    try:
        return con.sql(payload["query_string"]).to_arrow_table()
    except Exception as e:  # noqa: BLE001
        raise _flight_error("server", f"FakeHQS could not run the query: {e}") from e
