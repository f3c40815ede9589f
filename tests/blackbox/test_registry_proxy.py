"""The pull-through cache ("proxy"): repositories under a prefix mirror an
upstream registry (a second local berth-registry here), fetched on a miss
with their digests checked, then served from local storage; a lying
upstream is refused with nothing stored; pushes to a mirror are refused;
other repositories behave as before.
"""
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading

import pytest

pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402
from registry_helpers import IS_DOCKER_REGISTRY  # noqa: E402

pytest_plugins = ["registry_helpers"]

pytestmark = pytest.mark.skipif(IS_DOCKER_REGISTRY,
                                reason="berth-registry's proxy settings")


def start_cache(upstream_url, **more):
    entry = {"prefix": "mirror/", "upstream": upstream_url,
             "strip_prefix": True}
    entry.update(more)
    return rh.start_registry({"proxy": [entry]})


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


def test_start_fails_without_libcurl(broken_libcurl):
    top = tempfile.mkdtemp(prefix="berth-nocurl-", dir="/tmp")
    try:
        config = os.path.join(top, "config.json")
        with open(config, "w") as f:
            json.dump({"proxy": [{"prefix": "mirror/",
                                  "upstream": "http://127.0.0.1:1"}]}, f)
        p = subprocess.run(
            [rh.registry_binary(), "--listen", "127.0.0.1:0", "--root",
             os.path.join(top, "root"), "--config", config],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=30)
        assert p.returncode == 1, p
        assert ("berth-registry: pull-through cache needs libcurl: %s/"
                "libcurl.so.4: " % broken_libcurl) in p.stderr, p.stderr
    finally:
        shutil.rmtree(top, ignore_errors=True)
    # Without a proxy, libcurl is never looked for.
    reg = rh.start_registry()
    try:
        assert mapped_libcurl(reg) == []
        reg.check_healthy()
    finally:
        reg.stop()
