"""Helpers for the black-box tests of berth-registry (test_registry_*.py).

The registry under test is build/src/registry/berth-registry unless
BERTH_REGISTRY names another binary.  A value of "docker-registry" (or a
path ending in docker-registry) runs Debian's docker-registry 2.8 instead,
with a temporary YAML config; the tests were written against it, and the
few places where it falls short of the OCI Distribution Spec 1.1 are
skipped for it (IS_DOCKER_REGISTRY) with the reason, never weakened.

    berth-registry --listen 127.0.0.1:PORT --root DIR [--config FILE]
    docker-registry serve CONFIG.yml

A Registry is started on a free port with a fresh root under /tmp and is
ready once GET /v2/ answers 200.  stop() ends it by PID and removes every
temporary file, whether the test passed or failed.

Client speaks HTTP/1.1 with http.client, one connection per request, and
returns Response objects (status, headers, body).  The build_* and push_*
helpers make random blobs, configs and manifests in memory with correct
digests and sizes, and push them.
"""
import base64
import gzip
import hashlib
import io
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
import uuid

import pytest

from conftest import BUILD

REGISTRY = os.environ.get(
    "BERTH_REGISTRY", os.path.join(BUILD, "src", "registry", "berth-registry"))
IS_DOCKER_REGISTRY = REGISTRY.endswith("docker-registry")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
ALL_MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
ACCEPT_ALL = ", ".join(ALL_MANIFEST_TYPES)

# The OCI empty descriptor: the two bytes "{}".
EMPTY_JSON = b"{}"
EMPTY_DIGEST = ("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c0"
                "60f61caaff8a")

START_TIMEOUT = 15


# --------------------------------------------------------------------------
# Processes and ports

def registry_binary():
    """The registry under test as an absolute path; fails (not skips) when
    it is missing: on CI it is built before the tests run."""
    b = REGISTRY
    if os.sep not in b:
        b = shutil.which(b) or b
    b = os.path.abspath(b)
    if not os.access(b, os.X_OK):
        raise AssertionError(
            "registry %s not found: build it or set BERTH_REGISTRY" % b)
    return b


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _docker_registry_config(root, port):
    # A secret, so that docker-registry does not warn about a random one;
    # upload purging off, so that it does not walk the root at start;
    # foreign layers (Windows base layers) allowed: docker-registry
    # refuses every URL by default.
    return """version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: berth-test-{secret}
validation:
  manifests:
    urls:
      allow:
        - ^https?://
""".format(root=root, port=port, secret=uuid.uuid4().hex)


class Registry:
    """One registry process with a private root.  config: a dict written as
    berth-registry's JSON --config file (not allowed with docker-registry,
    whose YAML config the helper writes itself)."""

    def __init__(self, config=None):
        self.binary = registry_binary()
        self.config = config
        self.top = tempfile.mkdtemp(prefix="berth-reg-", dir="/tmp")
        self.root = os.path.join(self.top, "root")
        os.mkdir(self.root)
        self.log_path = os.path.join(self.top, "registry.log")
        self.proc = None
        self.port = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def argv(self):
        if IS_DOCKER_REGISTRY:
            if self.config is not None:
                raise AssertionError("no berth config with docker-registry")
            path = os.path.join(self.top, "config.yml")
            with open(path, "w") as f:
                f.write(_docker_registry_config(self.root, self.port))
            return [self.binary, "serve", path]
        argv = [self.binary, "--listen", self.host, "--root", self.root]
        if self.config is not None:
            path = os.path.join(self.top, "config.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            argv += ["--config", path]
        return argv

    def start(self):
        # A port can be taken between free_port() and the server's bind:
        # try a few.
        last = ""
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=log, start_new_session=True)
            if self._wait_ready():
                return self
            last = self.log()
            self._kill()
        raise AssertionError("registry did not start: %s\nlog:\n%s"
                             % (" ".join(self.argv()), last))

    def restart(self):
        """Starts the registry again on the same root (after a crash)."""
        self._kill()
        with open(self.log_path, "a") as log:
            log.write("\n--- restarted by the tests ---\n")
        return self.start()

    def _wait_ready(self):
        client = Client(self.host, timeout=2)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if client.get("/v2/").status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self, n=60):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def client(self, timeout=30):
        return Client(self.host, timeout=timeout)

    def _kill(self):
        """Ends the process by PID: SIGTERM, then SIGKILL after 5s."""
        p = self.proc
        if p is None:
            return
        self.proc = None
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)

    def stop(self):
        """Stops the process and removes the temporary files; returns the
        exit status (None if it was not running)."""
        code = None
        try:
            if self.proc is not None:
                code = self.proc.poll()
            self._kill()
        finally:
            shutil.rmtree(self.top, ignore_errors=True)
        return code

    def check_healthy(self):
        """Fails when the process died or GET /v2/ no longer answers 200."""
        assert self.alive(), "registry died (exit %s); log:\n%s" % (
            self.proc.returncode if self.proc else "?", self.log())
        r = self.client(timeout=10).get("/v2/")
        assert r.status == 200, "GET /v2/ -> %d after the test; log:\n%s" % (
            r.status, self.log())


def start_registry(config=None):
    return Registry(config).start()


# --------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self, method, path, status, reason, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: case-insensitive
        self.body = body
        self.incomplete = False

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def header_all(self, name):
        return self.headers.get_all(name) or []

    def json(self):
        return json.loads(self.body)

    def error_codes(self):
        """The codes of an OCI error body, [] when the body is not one."""
        try:
            doc = json.loads(self.body)
            return [e.get("code") for e in doc.get("errors", [])]
        except (ValueError, AttributeError, TypeError):
            return []

    def location(self):
        """The Location header as a path (with query) on this registry."""
        loc = self.header("Location")
        assert loc, "no Location header: %s" % self
        return path_of(loc)

    def __repr__(self):
        body = self.body[:300]
        return "<%s %s -> %d %s headers=%s body=%r>" % (
            self.method, self.path, self.status, self.reason,
            dict(self.headers.items()), body)

    __str__ = __repr__


def path_of(location):
    """A Location value (absolute or relative URL) as path?query."""
    u = urllib.parse.urlsplit(location)
    return u.path + ("?" + u.query if u.query else "")


def with_query(path, **params):
    """PATH with PARAMS added to its query (PATH may already have one)."""
    q = urllib.parse.urlencode(params)
    return path + ("&" if "?" in path else "?") + q


class Client:
    """A small HTTP client: one connection per request."""

    def __init__(self, host, timeout=30):
        self.host = host
        self.timeout = timeout

    def request(self, method, path, body=None, headers=None, chunked=False):
        """One request; chunked: send BODY (an iterable of bytes) with
        Transfer-Encoding: chunked."""
        h, p = self.host.rsplit(":", 1)
        conn = http.client.HTTPConnection(h, int(p), timeout=self.timeout)
        try:
            hdrs = dict(headers or {})
            if body is None and method in ("PUT", "POST", "PATCH") and not \
                    any(k.lower() == "content-length" for k in hdrs):
                hdrs["Content-Length"] = "0"
            conn.request(method, path, body=body, headers=hdrs,
                         encode_chunked=chunked)
            r = conn.getresponse()
            incomplete = False
            try:
                data = r.read()
            except http.client.IncompleteRead as e:
                # The body was shorter than its Content-Length: keep what
                # came, the caller decides (see Response.incomplete).
                data, incomplete = e.partial, True
            resp = Response(method, path, r.status, r.reason, r.msg, data)
            resp.incomplete = incomplete
            return resp
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def head(self, path, headers=None):
        return self.request("HEAD", path, headers=headers)

    def put(self, path, body=None, headers=None):
        return self.request("PUT", path, body=body, headers=headers)

    def post(self, path, body=None, headers=None):
        return self.request("POST", path, body=body, headers=headers)

    def patch(self, path, body=None, headers=None, chunked=False):
        return self.request("PATCH", path, body=body, headers=headers,
                            chunked=chunked)

    def delete(self, path, headers=None):
        return self.request("DELETE", path, headers=headers)

    def connect(self, timeout=10):
        h, p = self.host.rsplit(":", 1)
        return socket.create_connection((h, int(p)), timeout=timeout)

    def raw(self, data, read_timeout=10):
        """Sends DATA on a fresh connection, half-closes it and returns what
        the server answered (b"" when it just closed)."""
        s = self.connect(read_timeout)
        try:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server gave up reading: see what it said
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    # Registry shortcuts -------------------------------------------------

    def get_manifest(self, repo, ref, accept=ACCEPT_ALL, method="GET"):
        return self.request(method, "/v2/%s/manifests/%s" % (repo, ref),
                            headers={"Accept": accept} if accept else None)

    def get_blob(self, repo, digest, headers=None, method="GET"):
        return self.request(method, "/v2/%s/blobs/%s" % (repo, digest),
                            headers=headers)

    def tags(self, repo, **params):
        path = "/v2/%s/tags/list" % repo
        if params:
            path = with_query(path, **params)
        return self.get(path)


# --------------------------------------------------------------------------
# Content

def digest_of(data, alg="sha256"):
    return "%s:%s" % (alg, hashlib.new(alg, data).hexdigest())


def random_bytes(size):
    return os.urandom(size)


def new_repo(prefix="t"):
    """A fresh repository name (two components, lower case)."""
    return "%s/%s" % (prefix, uuid.uuid4().hex[:12])


def to_json(obj):
    """Manifest bytes in an unusual but valid layout (indent 3, a trailing
    newline), so that a registry re-serialising them gets caught."""
    return (json.dumps(obj, indent=3) + "\n").encode()


class Blob:
    """Bytes with their descriptor."""

    def __init__(self, data, media_type, alg="sha256", extra=None):
        self.data = data
        self.media_type = media_type
        self.digest = digest_of(data, alg)
        self.size = len(data)
        self.extra = dict(extra or {})  # more descriptor fields

    def descriptor(self, **more):
        d = {"mediaType": self.media_type, "digest": self.digest,
             "size": self.size}
        d.update(self.extra)
        d.update(more)
        return d


def build_layer(size=1024, media_type=OCI_LAYER):
    """A random 'layer' (random bytes: the registry does not look inside)."""
    return Blob(random_bytes(size), media_type)


def build_tar_layer(files=None, media_type=OCI_LAYER):
    """A real gzip-compressed tar layer holding FILES ({path: bytes}; a
    random file by default).  .diff_id is the digest of the tar."""
    if files is None:
        files = {"data/%s" % uuid.uuid4().hex: random_bytes(256)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(content))
    tar = buf.getvalue()
    blob = Blob(gzip.compress(tar, mtime=0), media_type)
    blob.diff_id = digest_of(tar)
    return blob


def build_config(arch="amd64", os_name="linux", media_type=OCI_CONFIG,
                 diff_ids=(), **extra):
    cfg = {"architecture": arch, "os": os_name,
           "created": "2024-01-02T03:04:05Z",
           "config": {"Env": ["PATH=/usr/bin:/bin"],
                      "Cmd": ["/bin/sh"], "Labels": {
                          "nonce": uuid.uuid4().hex}},
           "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}
    cfg.update(extra)
    return Blob(to_json(cfg), media_type)


def empty_config():
    """The OCI empty descriptor's blob, with its data inline."""
    b = Blob(EMPTY_JSON, OCI_EMPTY,
             extra={"data": base64.b64encode(EMPTY_JSON).decode()})
    assert b.digest == EMPTY_DIGEST
    return b


class Manifest:
    """Manifest bytes, their media type and digest, and what they name."""

    def __init__(self, obj, media_type, blobs=(), children=()):
        self.obj = obj
        self.data = to_json(obj)
        self.media_type = media_type
        self.digest = digest_of(self.data)
        self.size = len(self.data)
        self.blobs = list(blobs)          # Blob objects to push first
        self.children = list(children)    # Manifest objects to push first

    def descriptor(self, **more):
        d = {"mediaType": self.media_type, "digest": self.digest,
             "size": self.size}
        d.update(more)
        return d


def build_image(layers=1, layer_size=512, arch="amd64", os_name="linux",
                docker=False, annotations=None, subject=None, extra_layers=(),
                config=None, real_layers=False, config_extra=None):
    """An image manifest (OCI, or Docker schema 2) with a random config and
    LAYERS random layers (real tar+gzip ones with real_layers, for the
    clients that look inside).  extra_layers: descriptors added after
    them (they are not pushed: e.g. foreign layers)."""
    ltype = DOCKER_LAYER if docker else OCI_LAYER
    if real_layers:
        ls = [build_tar_layer(media_type=ltype) for _ in range(layers)]
    else:
        ls = [build_layer(layer_size, ltype) for _ in range(layers)]
    if config is None:
        config = build_config(arch, os_name,
                              DOCKER_CONFIG if docker else OCI_CONFIG,
                              diff_ids=[getattr(l, "diff_id", l.digest)
                                        for l in ls],
                              **(config_extra or {}))
    obj = {"schemaVersion": 2,
           "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
           "config": config.descriptor(),
           "layers": [l.descriptor() for l in ls] + list(extra_layers)}
    if subject is not None:
        obj["subject"] = subject
    if annotations:
        obj["annotations"] = annotations
    return Manifest(obj, obj["mediaType"], blobs=[config] + ls)


def build_artifact(artifact_type, subject=None, annotations=None, files=1):
    """An artifact: an OCI image manifest with artifactType, the empty
    config (data inline) and FILES small layers of ARTIFACT_TYPE."""
    cfg = empty_config()
    ls = [Blob(("artifact %d %s" % (i, uuid.uuid4())).encode(),
               "application/vnd.berth.test.file.v1+json")
          for i in range(files)]
    obj = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "artifactType": artifact_type,
           "config": cfg.descriptor(),
           "layers": [l.descriptor() for l in ls]}
    if subject is not None:
        obj["subject"] = subject
    if annotations:
        obj["annotations"] = annotations
    return Manifest(obj, OCI_MANIFEST, blobs=[cfg] + ls)


def build_index(children, docker=False, annotations=None, platforms=None):
    """An OCI index (or Docker manifest list) of CHILDREN (Manifests);
    platforms: one platform dict per child."""
    mt = DOCKER_LIST if docker else OCI_INDEX
    descs = []
    for i, c in enumerate(children):
        d = c.descriptor()
        if platforms is not None:
            d["platform"] = platforms[i]
        else:
            cfg = c.obj.get("config", {})
            blob = next((b for b in c.blobs
                         if b.digest == cfg.get("digest")), None)
            if blob is not None and blob.media_type != OCI_EMPTY:
                conf = json.loads(blob.data)
                d["platform"] = {"architecture": conf["architecture"],
                                 "os": conf["os"]}
        descs.append(d)
    obj = {"schemaVersion": 2, "mediaType": mt, "manifests": descs}
    if annotations:
        obj["annotations"] = annotations
    return Manifest(obj, mt, children=children)


# --------------------------------------------------------------------------
# Pushing

def expect_error(r, status, *codes):
    """R has status STATUS (an int or a tuple) and, when CODES are given,
    an OCI error body holding one of them."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status in statuses, "expected %s: %s" % (statuses, r)
    if codes:
        got = r.error_codes()
        assert any(c in got for c in codes), \
            "expected an error code in %s: %s" % (codes, r)


def _check(r, statuses, what):
    assert r.status in statuses, "%s: %s" % (what, r)
    return r


def start_upload(client, repo):
    """POST /v2/REPO/blobs/uploads/ -> the session's Location path."""
    r = _check(client.post("/v2/%s/blobs/uploads/" % repo), (202,),
               "start upload")
    return r.location()


def push_blob(client, repo, data, digest=None):
    """A monolithic upload: POST ?digest= with the body.  A registry may
    answer 202 (no single-POST uploads): then PUT the bytes to the session.
    Returns the final response (201)."""
    digest = digest or digest_of(data)
    r = client.post(with_query("/v2/%s/blobs/uploads/" % repo, digest=digest),
                    body=data,
                    headers={"Content-Type": "application/octet-stream"})
    if r.status == 202:
        r = client.put(with_query(r.location(), digest=digest), body=data,
                       headers={"Content-Type": "application/octet-stream"})
    return _check(r, (201,), "push blob %s to %s" % (digest, repo))


def push_blob_put(client, repo, data, digest=None):
    """POST for a session, then one PUT ?digest= with all the bytes."""
    digest = digest or digest_of(data)
    loc = start_upload(client, repo)
    r = client.put(with_query(loc, digest=digest), body=data,
                   headers={"Content-Type": "application/octet-stream"})
    return _check(r, (201,), "PUT blob %s to %s" % (digest, repo))


def patch_chunk(client, location, data, start):
    """PATCH one chunk with Content-Range START-END (inclusive)."""
    return client.patch(location, body=data, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": "%d-%d" % (start, start + len(data) - 1)})


def chunk_min_length(response):
    """OCI-Chunk-Min-Length of a POST response (0 when absent)."""
    v = response.header("OCI-Chunk-Min-Length")
    return int(v) if v else 0


def push_blob_chunked(client, repo, data, chunk_size, digest=None):
    """POST, PATCH chunks in order (Content-Range), PUT ?digest= with no
    body.  Chunks are at least the registry's OCI-Chunk-Min-Length.
    Returns the final response (201)."""
    digest = digest or digest_of(data)
    r = _check(client.post("/v2/%s/blobs/uploads/" % repo), (202,),
               "start upload")
    loc = r.location()
    chunk_size = max(chunk_size, chunk_min_length(r))
    for off in range(0, len(data), chunk_size):
        chunk = data[off:off + chunk_size]
        r = _check(patch_chunk(client, loc, chunk, off), (202,),
                   "PATCH %d-%d" % (off, off + len(chunk) - 1))
        loc = r.location()
    r = client.put(with_query(loc, digest=digest))
    return _check(r, (201,), "close chunked upload of %s" % digest)


def put_manifest(client, repo, ref, data, media_type):
    return client.put("/v2/%s/manifests/%s" % (repo, ref), body=data,
                      headers={"Content-Type": media_type})


def push_manifest(client, repo, manifest, ref=None, push_content=True):
    """Pushes MANIFEST's blobs and children (when push_content), then the
    manifest itself under REF (its digest by default).  Returns the 201
    response of the manifest PUT."""
    if push_content:
        for c in manifest.children:
            push_manifest(client, repo, c)
        for b in manifest.blobs:
            if client.head("/v2/%s/blobs/%s" % (repo, b.digest)).status != 200:
                push_blob(client, repo, b.data, b.digest)
    r = put_manifest(client, repo, ref or manifest.digest, manifest.data,
                     manifest.media_type)
    return _check(r, (201,), "push manifest %s" % (ref or manifest.digest))


# --------------------------------------------------------------------------
# Fixtures (the test modules load this module as a plugin)

@pytest.fixture(scope="module")
def registry_server():
    """One registry for a test module; every test uses fresh repositories."""
    reg = start_registry()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def registry(registry_server):
    """The module's registry, checked after each test: still running and
    still answering GET /v2/.  When an earlier test killed it, it is
    started again on the same root (on another port), so that one crash
    fails one test, not the rest of the module."""
    if not registry_server.alive():
        registry_server.restart()
    yield registry_server
    registry_server.check_healthy()


@pytest.fixture
def client(registry):
    return registry.client()


@pytest.fixture
def fresh_registry():
    """A registry of its own for one test (an empty catalog)."""
    reg = start_registry()
    try:
        yield reg
        reg.check_healthy()
    finally:
        reg.stop()


def link_next(response):
    """The path of a Link: <...>; rel="next" header, None without one."""
    for value in response.header_all("Link"):
        for part in value.split(","):
            part = part.strip()
            if 'rel="next"' in part.replace(" ", "") or \
                    "rel=next" in part.replace(" ", ""):
                start, end = part.index("<") + 1, part.index(">")
                return path_of(part[start:end])
    return None


def header_list(response, name):
    """A comma-separated header, all its lines, as a list of values."""
    out = []
    for v in response.header_all(name):
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


# --------------------------------------------------------------------------
# Authentication (test_registry_auth.py)

def basic_header(user, password):
    """An Authorization header value for Basic credentials."""
    raw = ("%s:%s" % (user, password)).encode()
    return "Basic " + base64.b64encode(raw).decode()


class AuthClient(Client):
    """A Client that sends AUTHORIZATION (a full header value, or None) with
    every request, so that the push_* helpers work through auth."""

    def __init__(self, host, authorization=None, timeout=30):
        super().__init__(host, timeout)
        self.authorization = authorization

    def request(self, method, path, body=None, headers=None, chunked=False):
        hdrs = dict(headers or {})
        if self.authorization and not any(
                k.lower() == "authorization" for k in hdrs):
            hdrs["Authorization"] = self.authorization
        return super().request(method, path, body=body, headers=hdrs,
                               chunked=chunked)


def _fill_port(value, port):
    if isinstance(value, str):
        return value.replace("{port}", str(port))
    if isinstance(value, dict):
        return {k: _fill_port(v, port) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_port(v, port) for v in value]
    return value


class AuthRegistry(Registry):
    """A berth-registry with an "auth" config: ready (and healthy) once
    GET /v2/ answers 200 or 401.  "{port}" in any string of the config is
    replaced with the port chosen at start (the token realm needs it)."""

    def __init__(self, config):
        super().__init__(config)
        self.config_template = config

    def argv(self):
        self.config = _fill_port(self.config_template, self.port)
        return super().argv()

    def _wait_ready(self):
        client = Client(self.host, timeout=2)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if client.get("/v2/").status in (200, 401):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def check_healthy(self):
        assert self.alive(), "registry died (exit %s); log:\n%s" % (
            self.proc.returncode if self.proc else "?", self.log())
        r = self.client(timeout=10).get("/v2/")
        assert r.status in (200, 401), "GET /v2/ -> %d; log:\n%s" % (
            r.status, self.log())

    def auth_client(self, authorization=None, timeout=30):
        return AuthClient(self.host, authorization, timeout)


def start_auth_registry(config):
    return AuthRegistry(config).start()


def parse_challenge(value):
    """A WWW-Authenticate value as (scheme, {param: value})."""
    scheme, _, rest = value.partition(" ")
    params = {}
    for part in rest.split('",'):
        k, _, v = part.strip().partition("=")
        params[k.strip()] = v.strip().strip('"')
    return scheme, params


def run_gc(client):
    """POST /admin/gc (berth-registry only): the answer's JSON, checked."""
    r = _check(client.post("/admin/gc"), (200,), "POST /admin/gc")
    stats = r.json()
    for key in ("blobs_deleted", "bytes_freed", "manifests_deleted",
                "duration_ms"):
        assert isinstance(stats.get(key), int), stats
    return stats


def blob_status(client, repo, digest):
    """The status of GET of a blob; on 200 its content must match."""
    r = client.get_blob(repo, digest)
    if r.status == 200:
        assert digest_of(r.body, digest.split(":")[0]) == digest, (
            "blob %s of %s served with other content" % (digest, repo))
    return r.status
