"""The pull-through cache ("proxy"): repositories under a prefix mirror an
upstream registry (a second local berth-registry here), fetched on a miss
with their digests checked, then served from local storage; a lying
upstream is refused with nothing stored; pushes to a mirror are refused;
other repositories behave as before.
"""
import collections
import contextlib
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402
from registry_helpers import IS_DOCKER_REGISTRY  # noqa: E402

pytest_plugins = ["registry_helpers"]

pytestmark = pytest.mark.skipif(IS_DOCKER_REGISTRY,
                                reason="berth-registry's proxy settings")


def start_cache(upstream_url, settings=None, **more):
    """A registry mirroring UPSTREAM_URL under mirror/; MORE goes into its
    proxy entry, SETTINGS into the rest of its config."""
    entry = {"prefix": "mirror/", "upstream": upstream_url,
             "strip_prefix": True}
    entry.update(more)
    config = dict(settings or {})
    config["proxy"] = [entry]
    return rh.start_registry(config)


@pytest.fixture
def pair():
    """An upstream registry with one image pushed under tag v1, and a cache
    in front of it."""
    upstream = rh.start_registry()
    cache = None
    try:
        repo = rh.new_repo("up")
        image = rh.build_image(layers=3, layer_size=70000)
        rh.push_manifest(upstream.client(), repo, image, ref="v1")
        cache = start_cache("http://" + upstream.host)
        yield upstream, cache, repo, image
        cache.check_healthy()
    finally:
        if cache:
            cache.stop()
        upstream.stop()


def pull_all(c, repo, ref, image):
    r = c.get_manifest(repo, ref)
    assert r.status == 200, r
    assert r.body == image.data
    assert r.header("Docker-Content-Digest") == image.digest
    assert r.header("Content-Type") == image.media_type
    for b in image.blobs:
        r = c.get_blob(repo, b.digest)
        assert r.status == 200, (b.digest, r)
        assert r.body == b.data
        assert hashlib.sha256(r.body).hexdigest() == b.digest.split(":")[1]


def test_pull_through_and_offline(pair):
    upstream, cache, repo, image = pair
    c = cache.client()
    mrepo = "mirror/" + repo
    # HEAD first: a miss fetched for HEAD too.
    r = c.get_manifest(mrepo, image.digest, method="HEAD")
    assert r.status == 200, r
    assert r.header("Docker-Content-Digest") == image.digest
    pull_all(c, mrepo, "v1", image)
    pull_all(c, mrepo, image.digest, image)
    assert c.tags(mrepo).status == 200
    assert "v1" in json.loads(c.tags(mrepo).body)["tags"]
    # Unknown upstream: 404 as usual.
    rh.expect_error(c.get_manifest(mrepo, "nope"), 404, "MANIFEST_UNKNOWN",
                    "NAME_UNKNOWN")
    rh.expect_error(c.get_blob(mrepo, rh.digest_of(b"absent")), 404,
                    "BLOB_UNKNOWN")
    # Upstream gone: served from the cache's storage.
    upstream.stop()
    pull_all(c, mrepo, "v1", image)
    pull_all(c, mrepo, image.digest, image)


def test_ttl_zero_revalidates(pair):
    upstream, _, repo, image = pair
    cache = start_cache("http://" + upstream.host, ttl_seconds=0)
    try:
        c = cache.client()
        mrepo = "mirror/" + repo
        pull_all(c, mrepo, "v1", image)
        # The tag moves upstream: the next pull sees the new manifest.
        image2 = rh.build_image(layers=1)
        rh.push_manifest(upstream.client(), repo, image2, ref="v1")
        pull_all(c, mrepo, "v1", image2)
        # Upstream gone: the local tag still serves.
        upstream.stop()
        pull_all(c, mrepo, "v1", image2)
    finally:
        cache.stop()


def test_push_to_mirror_refused(pair):
    upstream, cache, repo, image = pair
    c = cache.client()
    r = c.post("/v2/mirror/%s/blobs/uploads/" % repo)
    rh.expect_error(r, 405, "UNSUPPORTED")
    r = rh.put_manifest(c, "mirror/" + repo, "v2", image.data,
                        image.media_type)
    rh.expect_error(r, 405, "UNSUPPORTED")


def test_other_repos_unchanged(pair):
    upstream, cache, repo, image = pair
    c = cache.client()
    # Not under the prefix: not fetched from upstream.
    rh.expect_error(c.get_manifest(repo, "v1"), 404, "NAME_UNKNOWN",
                    "MANIFEST_UNKNOWN")
    local = rh.new_repo("local")
    img = rh.build_image(layers=2)
    rh.push_manifest(c, local, img, ref="latest")
    pull_all(c, local, "latest", img)


class LyingUpstream(http.server.BaseHTTPRequestHandler):
    """Answers every manifest and blob with bytes that do not match the
    digest it claims (or was asked for)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if "/manifests/" in self.path:
            body = rh.to_json(rh.build_image().obj)
            claimed = rh.digest_of(b"something else")
            ctype = rh.OCI_MANIFEST
        elif "/blobs/" in self.path:
            body = b"not the blob you asked for"
            claimed = self.path.rsplit("/", 1)[1]
            ctype = "application/octet-stream"
        else:
            body, claimed, ctype = b"{}", "", "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if claimed:
            self.send_header("Docker-Content-Digest", claimed)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def liar():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LyingUpstream)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_digest_mismatch_refused(liar):
    cache = start_cache(liar)
    try:
        c = cache.client()
        repo = "mirror/" + rh.new_repo("lie")
        img = rh.build_image()
        for ref in ("v1", img.digest):
            r = c.get_manifest(repo, ref)
            rh.expect_error(r, 502, "DIGEST_INVALID")
        blob = img.blobs[1]
        rh.expect_error(c.get_blob(repo, blob.digest), 502, "DIGEST_INVALID")
        # Nothing stored.
        blobs = os.path.join(cache.root, "blobs")
        stored = [f for _, _, fs in os.walk(blobs) for f in fs]
        assert stored == []
        assert not os.path.exists(os.path.join(cache.root, "repositories",
                                               repo))
        cache.check_healthy()
    finally:
        cache.stop()


def test_unreachable_upstream():
    port = rh.free_port()
    cache = start_cache("http://127.0.0.1:%d" % port)
    try:
        c = cache.client()
        r = c.get_manifest("mirror/" + rh.new_repo("gone"), "v1")
        rh.expect_error(r, 502, "UNKNOWN")
    finally:
        cache.stop()


def test_unreachable_https_upstream():
    port = rh.free_port()
    cache = start_cache("https://127.0.0.1:%d" % port)
    try:
        c = cache.client()
        r = c.get_manifest("mirror/" + rh.new_repo("gone"), "v1")
        rh.expect_error(r, 502, "UNKNOWN")
    finally:
        cache.stop()


# --------------------------------------------------------------------------
# libcurl is loaded only by a server with a pull-through cache

def mapped_libcurl(registry):
    with open("/proc/%d/maps" % registry.proc.pid) as f:
        return [line.split()[-1] for line in f if "libcurl" in line]


def test_libcurl_mapped_only_with_a_proxy(pair):
    upstream, cache, repo, image = pair
    # No proxy configured: libcurl and its dependencies stay out.
    assert mapped_libcurl(upstream) == []
    out = subprocess.run(["ldd", upstream.binary], check=True,
                         capture_output=True, text=True).stdout
    assert "libcurl" not in out, out
    # The cache loaded it at start, and fetches with it.
    assert mapped_libcurl(cache) != []
    pull_all(cache.client(), "mirror/" + repo, "v1", image)


@pytest.fixture
def broken_libcurl(monkeypatch):
    """LD_LIBRARY_PATH names a directory whose libcurl.so.4 is not a shared
    object: dlopen finds it first and fails."""
    top = tempfile.mkdtemp(prefix="berth-nocurl-", dir="/tmp")
    with open(os.path.join(top, "libcurl.so.4"), "w") as f:
        f.write("not a shared object\n")
    monkeypatch.setenv("LD_LIBRARY_PATH", top)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run_with_config(config):
    """Runs berth-registry with CONFIG, expecting it to exit at start."""
    top = tempfile.mkdtemp(prefix="berth-proxycfg-", dir="/tmp")
    try:
        path = os.path.join(top, "config.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return subprocess.run(
            [rh.registry_binary(), "--listen", "127.0.0.1:0", "--root",
             os.path.join(top, "root"), "--config", path],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=30)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_start_fails_without_libcurl(broken_libcurl):
    p = run_with_config({"proxy": [{"prefix": "mirror/",
                                    "upstream": "http://127.0.0.1:1"}]})
    assert p.returncode == 1, p
    assert ("berth-registry: pull-through cache needs libcurl: %s/"
            "libcurl.so.4: " % broken_libcurl) in p.stderr, p.stderr
    # Without a proxy, libcurl is never looked for.
    reg = rh.start_registry()
    try:
        assert mapped_libcurl(reg) == []
        reg.check_healthy()
    finally:
        reg.stop()


def test_start_fails_with_another_c_library(tmp_path, monkeypatch):
    """A static berth-registry and the libcurl it loads must share the C
    library's release: a libcurl.so.4 whose gnu_get_libc_version says
    otherwise is refused at start, with what to do."""
    src = tmp_path / "fake.c"
    src.write_text('const char *gnu_get_libc_version (void) '
                   '{ return "1.0-other"; }\n')
    subprocess.run(["cc", "-shared", "-fPIC", "-o",
                    str(tmp_path / "libcurl.so.4"), str(src)], check=True)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    p = run_with_config({"proxy": [{"prefix": "mirror/",
                                    "upstream": "http://127.0.0.1:1"}]})
    assert p.returncode == 1, p
    assert ("berth-registry: pull-through cache needs libcurl: libcurl.so.4 "
            "uses the C library 1.0-other, but this binary was linked with "
            "2.") in p.stderr, p.stderr
    assert "rebuild it" in p.stderr, p.stderr


# --------------------------------------------------------------------------
# Credentials for upstreams: Basic, and Docker's token flow

class CountingRelay:
    """A tiny HTTP/1.1 relay put between the cache and its upstream
    (TARGET, "host:port", may be set after the start).  It counts requests
    per (method, path without query) as they arrive, before forwarding
    them, so the counts are complete once the cache has had its answers.
    hold(PATH) keeps the answers to GETs of PATH unfinished (the headers
    and all but the last bytes sent), and those to HEADs of PATH unsent,
    until release(), or cut() closes their connections instead."""

    def __init__(self):
        self.target = None
        self.counts = collections.Counter()
        self.cond = threading.Condition()
        self.held = None
        self.gate = threading.Event()
        self.cut_held = False
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                relay.relay(self)

            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.server.server_address[1]

    def count(self, method, path):
        with self.cond:
            return self.counts[(method, path)]

    def total(self, method, suffix):
        """Requests of METHOD whose path ends with SUFFIX."""
        with self.cond:
            return sum(n for (m, p), n in self.counts.items()
                       if m == method and p.endswith(suffix))

    def wait_count(self, method, path, n, timeout=60):
        with self.cond:
            assert self.cond.wait_for(
                lambda: self.counts[(method, path)] >= n, timeout), (
                    "%s %s did not reach the upstream" % (method, path))

    def hold(self, path):
        self.held = path
        self.gate.clear()
        self.cut_held = False

    def release(self):
        self.gate.set()

    def cut(self):
        self.cut_held = True
        self.gate.set()

    def relay(self, h):
        with self.cond:
            self.counts[(h.command, h.path.split("?")[0])] += 1
            self.cond.notify_all()
        conn = http.client.HTTPConnection(self.target, timeout=60)
        try:
            conn.request(h.command, h.path, headers={
                k: v for k, v in h.headers.items()
                if k.lower() not in ("host", "connection")})
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if h.command == "HEAD" and h.path.split("?")[0] == self.held:
            self.gate.wait()
            if self.cut_held:
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "content-length", "date",
                                 "server", "transfer-encoding"):
                h.send_header(k, v)
        h.send_header("Content-Length", resp.getheader("Content-Length", "0")
                      if h.command == "HEAD" else str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            self.send_body(h, body)

    def send_body(self, h, body):
        try:
            if h.path.split("?")[0] != self.held or len(body) < 2:
                h.wfile.write(body)
                return
            first = min(1 << 20, len(body) - 1)
            h.wfile.write(body[:first])
            self.gate.wait()
            if self.cut_held:
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            h.wfile.write(body[first:])
        except (BrokenPipeError, ConnectionResetError):
            # The cache went away (a failing test stops it).
            h.close_connection = True

    def close(self):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def secrets():
    """An htpasswd file (alice/secret), the password in a file, and an EC
    P-256 key for a token service."""
    top = tempfile.mkdtemp(prefix="berth-proxyauth-", dir="/tmp")
    ht = os.path.join(top, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", ht, "alice", "secret"], check=True,
                   stderr=subprocess.DEVNULL)
    pw = os.path.join(top, "password")
    with open(pw, "w") as f:
        f.write("secret\n")
    key = os.path.join(top, "key.pem")
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1",
                    "-noout", "-out", key], check=True)
    try:
        yield {"htpasswd": ht, "password_file": pw, "key": key}
    finally:
        shutil.rmtree(top, ignore_errors=True)


ALICE = rh.basic_header("alice", "secret")
WRONG = "not-the-password-0b3f"


@pytest.fixture
def basic_upstream(secrets):
    """A berth-registry with htpasswd auth (no anonymous pulls) holding an
    image under alice/app:v1."""
    up = rh.start_auth_registry({"auth": {"htpasswd": {
        "realm": "upstream", "path": secrets["htpasswd"]}}})
    try:
        image = rh.build_image(layers=2, layer_size=30000)
        rh.push_manifest(up.auth_client(ALICE), "alice/app", image, ref="v1")
        yield up, image
        up.check_healthy()
    finally:
        up.stop()


def expect_denied(cache, r, *needles):
    """The answer to a pull the upstream refused: 502 DENIED with why in
    the detail, and no secret anywhere."""
    rh.expect_error(r, 502, "DENIED")
    err = r.json()["errors"][0]
    for needle in needles:
        assert needle in err["detail"]["upstream"], r
    for text in (r.body.decode(), cache.log(400)):
        assert "secret" not in text and WRONG not in text, text


@pytest.mark.parametrize("how", ["password", "password_file"])
def test_basic_upstream_with_credentials(secrets, basic_upstream, how):
    up, image = basic_upstream
    secret = {"password": "secret"} if how == "password" else {
        "password_file": secrets["password_file"]}
    cache = start_cache("http://" + up.host, username="alice", **secret)
    try:
        pull_all(cache.client(), "mirror/alice/app", "v1", image)
        cache.check_healthy()
    finally:
        cache.stop()


def test_basic_upstream_wrong_or_missing_credentials(basic_upstream):
    up, image = basic_upstream
    for creds, needles in (
            ({"username": "alice", "password": WRONG},
             ("refused the credentials of user `alice`",)),
            ({}, ("asks for credentials; none are configured",))):
        cache = start_cache("http://" + up.host, **creds)
        try:
            c = cache.client()
            expect_denied(cache, c.get_manifest("mirror/alice/app", "v1"),
                          *needles)
            expect_denied(cache, c.get_blob("mirror/alice/app",
                                            image.blobs[1].digest), *needles)
            # Nothing stored.
            assert not os.path.exists(os.path.join(
                cache.root, "repositories", "mirror"))
            cache.check_healthy()
        finally:
            cache.stop()


def token_upstream_config(secrets, realm_host):
    return {"auth": {"token": {
        "realm": "http://%s/token" % realm_host,
        "service": "upstream", "issuer": "upstream",
        "key": secrets["key"], "users": secrets["htpasswd"],
        "expiration_seconds": 300,
        "acl": [{"account": "alice", "name": "alice/*",
                 "actions": ["pull", "push"]},
                {"account": "alice", "name": "public/*",
                 "actions": ["pull", "push"]},
                {"account": "*", "name": "public/*",
                 "actions": ["pull"]}]}}}


def push_with_token(up, repo, image):
    r = up.auth_client(ALICE).get(
        "/token?service=upstream&scope=repository:%s:pull,push" % repo)
    assert r.status == 200, r
    rh.push_manifest(up.auth_client("Bearer " + r.json()["token"]), repo,
                     image, ref="v1")


@pytest.fixture
def token_upstream(secrets):
    """A berth-registry in token mode, reached through a CountingRelay
    (its token realm too), holding the same image as alice/app:v1 (alice
    only) and public/app:v1 (anyone)."""
    relay = CountingRelay()
    up = None
    try:
        up = rh.start_auth_registry(token_upstream_config(secrets,
                                                          relay.host))
        relay.target = up.host
        image = rh.build_image(layers=2, layer_size=30000)
        push_with_token(up, "alice/app", image)
        push_with_token(up, "public/app", image)
        yield up, relay, image
        up.check_healthy()
    finally:
        if up:
            up.stop()
        relay.close()


def test_token_upstream_with_credentials(token_upstream):
    up, relay, image = token_upstream
    cache = start_cache("http://" + relay.host, username="alice",
                        password="secret")
    try:
        c = cache.client()
        pull_all(c, "mirror/alice/app", "v1", image)
        # One token for the manifest and every blob of the repository: it
        # is kept for its scope.
        assert relay.count("GET", "/token") == 1
        # The first request went without it (401), then with it.
        assert relay.count("GET", "/v2/alice/app/manifests/v1") == 2
        for b in image.blobs:
            assert relay.count("GET", "/v2/alice/app/blobs/" + b.digest) == 1
        # Another repository is another scope.
        pull_all(c, "mirror/public/app", "v1", image)
        assert relay.count("GET", "/token") == 2
        cache.check_healthy()
    finally:
        cache.stop()


def test_token_upstream_anonymous(token_upstream):
    up, relay, image = token_upstream
    cache = start_cache("http://" + relay.host)
    try:
        c = cache.client()
        # An anonymous token covers public/.
        pull_all(c, "mirror/public/app", "v1", image)
        # It does not cover alice/: the token is refused.
        expect_denied(cache, c.get_manifest("mirror/alice/app", "v1"),
                      "refused access to GET alice/app/manifests/v1",
                      "insufficient_scope")
        cache.check_healthy()
    finally:
        cache.stop()


def test_token_upstream_wrong_password(token_upstream):
    up, relay, image = token_upstream
    cache = start_cache("http://" + relay.host, username="alice",
                        password=WRONG)
    try:
        c = cache.client()
        for r in (c.get_manifest("mirror/public/app", "v1"),
                  c.get_blob("mirror/alice/app", image.blobs[0].digest)):
            expect_denied(cache, r, "token service http://%s/token refused "
                          "the credentials of user `alice`" % relay.host)
        assert not os.path.exists(os.path.join(cache.root, "repositories",
                                               "mirror"))
        cache.check_healthy()
    finally:
        cache.stop()


def test_token_expiry(secrets):
    """A token is used until its expires_in, then a new one is fetched."""
    with contextlib.ExitStack() as cleanup:
        relay = CountingRelay()
        cleanup.callback(relay.close)
        config = token_upstream_config(secrets, relay.host)
        config["auth"]["token"]["expiration_seconds"] = 1
        up = rh.start_auth_registry(config)
        cleanup.callback(up.stop)
        relay.target = up.host
        image = rh.build_image(layers=1)
        push_with_token(up, "alice/app", image)
        # ttl 0: every pull of the tag asks upstream (HEAD), with a token.
        cache = start_cache("http://" + relay.host, username="alice",
                            password="secret", ttl_seconds=0)
        cleanup.callback(cache.stop)
        c = cache.client()
        pull_all(c, "mirror/alice/app", "v1", image)
        assert relay.count("GET", "/token") == 1
        fetched = time.monotonic()
        # Let the token expire: the next pull gets a new one.
        time.sleep(max(0, fetched + 1.2 - time.monotonic()))
        pull_all(c, "mirror/alice/app", "v1", image)
        assert relay.count("GET", "/token") == 2
        cache.check_healthy()


class HtpasswdDockerRegistry(rh.AuthRegistry):
    """Debian's docker-registry with htpasswd auth (bcrypt, `htpasswd
    -Bbn`), the peer a real mirror would face."""

    def __init__(self, htpasswd):
        super().__init__(None)
        self.binary = shutil.which("docker-registry")
        self.htpasswd = htpasswd

    def argv(self):
        path = os.path.join(self.top, "config.yml")
        with open(path, "w") as f:
            f.write(rh._docker_registry_config(self.root, self.port))
            f.write("auth:\n  htpasswd:\n    realm: docker\n"
                    "    path: %s\n" % self.htpasswd)
        return [self.binary, "serve", path]


@pytest.mark.skipif(shutil.which("docker-registry") is None,
                    reason="docker-registry is not installed")
def test_docker_registry_upstream_with_htpasswd():
    with contextlib.ExitStack() as cleanup:
        top = tempfile.mkdtemp(prefix="berth-proxyauth-", dir="/tmp")
        cleanup.callback(shutil.rmtree, top, ignore_errors=True)
        line = subprocess.run(["htpasswd", "-Bbn", "bob", "hunter2"],
                              check=True, capture_output=True,
                              text=True).stdout.strip()
        ht = os.path.join(top, "htpasswd")
        with open(ht, "w") as f:
            f.write(line + "\n")
        up = HtpasswdDockerRegistry(ht).start()
        cleanup.callback(up.stop)
        image = rh.build_image(layers=2, layer_size=30000)
        rh.push_manifest(up.auth_client(rh.basic_header("bob", "hunter2")),
                         "bob/app", image, ref="v1")
        for password in ("hunter2", WRONG):
            cache = start_cache("http://" + up.host, username="bob",
                                password=password)
            try:
                c = cache.client()
                if password == WRONG:
                    expect_denied(cache, c.get_manifest("mirror/bob/app",
                                                        "v1"),
                                  "refused the credentials of user `bob`")
                else:
                    pull_all(c, "mirror/bob/app", "v1", image)
                cache.check_healthy()
            finally:
                cache.stop()


@pytest.mark.parametrize("entry,status,message", [
    ({"password": "x"}, 2, "proxy[0].username: required with a password"),
    ({"username": "u"}, 2,
     "proxy[0]: username needs password or password_file"),
    ({"username": "u", "password": "x", "password_file": "/nonexistent"}, 2,
     "proxy[0]: password and password_file are exclusive"),
    ({"username": "u:v", "password": "x"}, 2, "without `:`"),
    ({"upstream": "http://u:x@127.0.0.1:1"}, 2,
     "proxy[0].upstream: credentials go in username and password"),
    ({"username": "u", "password_file": "/nonexistent/pw"}, 1,
     "proxy[0].password_file: open `/nonexistent/pw`"),
])
def test_credentials_config_refused(entry, status, message):
    config = {"prefix": "mirror/", "upstream": "http://127.0.0.1:1"}
    config.update(entry)
    p = run_with_config({"proxy": [config]})
    assert p.returncode == status, p
    assert message in p.stderr, p.stderr


# --------------------------------------------------------------------------
# One upstream fetch for concurrent misses

CLIENTS = 10


@pytest.fixture
def relayed():
    """An upstream registry behind a CountingRelay, and a cache in front of
    the relay with an HTTP thread for each client (a waiting request holds
    its thread), logging at debug: a request that joins a fetch in
    progress says so."""
    with contextlib.ExitStack() as cleanup:
        relay = CountingRelay()
        cleanup.callback(relay.close)
        up = rh.start_registry()
        cleanup.callback(up.stop)
        relay.target = up.host
        cache = start_cache("http://" + relay.host, settings={
            "threads": CLIENTS + 4, "log_level": "debug"})
        cleanup.callback(cache.stop)
        yield up, relay, cache
        cache.check_healthy()


def waiting(cache, what):
    with open(cache.log_path, errors="replace") as f:
        return f.read().count("proxy: waiting for the fetch of " + what)


def start_concurrent(cache, relay, path, suffix, what, fetches):
    """Starts one client thread per function of FETCHES (each called with
    a client; the results go into the returned list): the first once its
    fetch of PATH is held at the relay, each next one once the one before
    waits for that fetch (the cache's log names WHAT), so that all
    overlap; fails as soon as a second GET of a path ending with SUFFIX
    goes upstream.  Returns the threads and the results."""
    results = [None] * len(fetches)
    threads = []

    def run(i):
        results[i] = fetches[i](cache.client(timeout=120))

    for i in range(len(fetches)):
        t = threading.Thread(target=run, args=(i,))
        t.start()
        threads.append(t)
        if i == 0:
            relay.wait_count("GET", path, 1)
            continue
        deadline = time.monotonic() + 60
        while waiting(cache, what) < i:
            assert relay.total("GET", suffix) == 1, (
                "a second fetch of the object went upstream")
            assert time.monotonic() < deadline, (
                "client %d did not join the fetch; log:\n%s"
                % (i, cache.log()))
            time.sleep(0.01)
    return threads, results


def join_all(threads):
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()


def streamed_blob(repo, digest):
    """A client's GET of a blob, read in pieces and hashed: (status, size,
    digest of the body)."""
    def fetch(c):
        conn = http.client.HTTPConnection(c.host, timeout=120)
        try:
            conn.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
            resp = conn.getresponse()
            h, size = hashlib.sha256(), 0
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
            return resp.status, size, "sha256:" + h.hexdigest()
        finally:
            conn.close()
    return fetch


def test_concurrent_blob_misses_fetch_once(relayed):
    up, relay, cache = relayed
    data = os.urandom(20 << 20)
    digest = rh.digest_of(data)
    # Two upstream repositories hold the blob; the clients ask for it
    # through both.
    repo_a, repo_b = rh.new_repo("flight"), rh.new_repo("flight")
    for repo in (repo_a, repo_b):
        rh.push_blob(up.client(), repo, data, digest)
    path_a = "/v2/%s/blobs/%s" % (repo_a, digest)
    relay.hold(path_a)
    fetches = [streamed_blob("mirror/" + (repo_a if i % 2 == 0 else repo_b),
                             digest) for i in range(CLIENTS)]
    threads, results = start_concurrent(
        cache, relay, path_a, "/blobs/" + digest,
        "blob http://%s %s" % (relay.host, digest), fetches)
    relay.release()
    join_all(threads)
    assert results == [(200, len(data), digest)] * CLIENTS
    # One GET of the blob upstream; the second repository's clients only
    # asked whether it holds it.
    assert relay.total("GET", "/blobs/" + digest) == 1
    assert relay.count("HEAD", "/v2/%s/blobs/%s" % (repo_b, digest)) >= 1
    # Stored once, and served from there afterwards.
    c = cache.client()
    for repo in (repo_a, repo_b):
        r = c.get_blob("mirror/" + repo, digest)
        assert r.status == 200 and rh.digest_of(r.body) == digest
    assert relay.total("GET", "/blobs/" + digest) == 1


def test_concurrent_blob_misses_share_a_failure(relayed):
    up, relay, cache = relayed
    data = os.urandom(4 << 20)
    digest = rh.digest_of(data)
    repo = rh.new_repo("flight")
    rh.push_blob(up.client(), repo, data, digest)
    path = "/v2/%s/blobs/%s" % (repo, digest)
    relay.hold(path)
    fetches = [lambda c: c.get_blob("mirror/" + repo, digest)] * 4
    threads, results = start_concurrent(
        cache, relay, path, path, "blob http://%s %s" % (relay.host, digest),
        fetches)
    # The upstream connection breaks mid-body: every client gets the error.
    relay.cut()
    join_all(threads)
    for r in results:
        rh.expect_error(r, 502, "UNKNOWN")
        assert "truncated" in r.json()["errors"][0]["detail"]["upstream"]
    assert relay.count("GET", path) == 1
    stored = [f for _, _, fs in os.walk(os.path.join(cache.root, "blobs"))
              for f in fs]
    assert stored == []
    # The next miss fetches again.
    relay.hold(None)
    r = cache.client().get_blob("mirror/" + repo, digest)
    assert r.status == 200 and r.body == data
    assert relay.count("GET", path) == 2


def test_concurrent_manifest_misses_fetch_once(relayed):
    up, relay, cache = relayed
    repo = rh.new_repo("flight")
    image = rh.build_image(layers=1)
    rh.push_manifest(up.client(), repo, image, ref="v1")
    path = "/v2/%s/manifests/v1" % repo
    relay.hold(path)
    fetches = [lambda c: c.get_manifest("mirror/" + repo, "v1")] * CLIENTS
    threads, results = start_concurrent(
        cache, relay, path, path,
        "manifest http://%s mirror/%s:v1" % (relay.host, repo), fetches)
    relay.release()
    join_all(threads)
    for r in results:
        assert r.status == 200, r
        assert r.body == image.data
        assert r.header("Docker-Content-Digest") == image.digest
    assert relay.count("GET", path) == 1


def test_concurrent_revalidations_share_one_head(relayed):
    up, relay, _ = relayed
    repo = rh.new_repo("flight")
    image = rh.build_image(layers=1)
    rh.push_manifest(up.client(), repo, image, ref="v1")
    # ttl 0: every pull of the tag asks upstream whether it moved.
    cache = start_cache("http://" + relay.host, ttl_seconds=0, settings={
        "threads": CLIENTS + 4, "log_level": "debug"})
    try:
        path = "/v2/%s/manifests/v1" % repo
        mrepo = "mirror/" + repo
        r = cache.client().get_manifest(mrepo, "v1")
        assert r.status == 200 and r.body == image.data
        assert relay.count("GET", path) == 1
        heads = relay.count("HEAD", path)
        relay.hold(path)
        results = [None] * CLIENTS
        threads = []

        def run(i):
            results[i] = cache.client(timeout=120).get_manifest(mrepo, "v1")

        what = "manifest HEAD http://%s %s:v1" % (relay.host, mrepo)
        for i in range(CLIENTS):
            t = threading.Thread(target=run, args=(i,))
            t.start()
            threads.append(t)
            if i == 0:
                relay.wait_count("HEAD", path, heads + 1)
                continue
            deadline = time.monotonic() + 60
            while waiting(cache, what) < i:
                assert relay.count("HEAD", path) == heads + 1, (
                    "a second HEAD of the tag went upstream")
                assert time.monotonic() < deadline, (
                    "client %d did not join the HEAD; log:\n%s"
                    % (i, cache.log()))
                time.sleep(0.01)
        relay.release()
        join_all(threads)
        for r in results:
            assert r.status == 200, r
            assert r.body == image.data
        assert relay.count("HEAD", path) == heads + 1
        assert relay.count("GET", path) == 1
        # Not shared once it has landed: the next pull asks again.
        relay.hold(None)
        r = cache.client().get_manifest(mrepo, "v1")
        assert r.status == 200 and r.body == image.data
        assert relay.count("HEAD", path) == heads + 2
    finally:
        relay.hold(None)
        relay.release()
        cache.stop()
