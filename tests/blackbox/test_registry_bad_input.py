"""Bad input to the registry: wrong digests, cut-off uploads, oversized and
malformed manifests, invalid names, tags, ranges and digests, broken HTTP.

Each answer must be the one the OCI Distribution Spec gives (where it gives
a choice, any of them, but never a 5xx), nothing half-written may be
served afterwards, and the registry must keep running: after every test the
fixtures check that GET /v2/ still answers 200 and that an image pushed at
the start of the module (the canary) is still served byte for byte.

Run against docker-registry 2.8, the cases where it answers 500 or the
wrong code are skipped for it, with the reason.
"""
import json
import os
import time
import uuid

import pytest

# registry_helpers is also this module's plugin (its fixtures): its asserts
# are rewritten (explained) when registered before the first import.
pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402
from registry_helpers import IS_DOCKER_REGISTRY  # noqa: E402

# The fixtures: registry_server (one per module), registry, client,
# fresh_registry.
pytest_plugins = ["registry_helpers"]

OCTET = {"Content-Type": "application/octet-stream"}
CANARY_REPO = "canary/image"

DOCKER_500 = "docker-registry 2.8 answers 500 to this input"
DOCKER_DOT_SEGMENTS = ("docker-registry 2.8 (Go's ServeMux) answers 301 to "
                       "paths with dot segments or empty segments")


@pytest.fixture(scope="module")
def canary(registry_server):
    c = registry_server.client()
    m = rh.build_index([rh.build_image(arch="amd64", layers=2),
                        rh.build_image(arch="arm64", layers=1)])
    rh.push_manifest(c, CANARY_REPO, m, ref="canary")
    return m


def check_canary(client, m):
    r = client.get_manifest(CANARY_REPO, "canary")
    assert r.status == 200 and r.body == m.data, "canary tag: %s" % r
    for child in m.children:
        r = client.get_manifest(CANARY_REPO, child.digest)
        assert r.status == 200 and r.body == child.data, r
        for b in child.blobs:
            r = client.get_blob(CANARY_REPO, b.digest)
            assert r.status == 200 and r.body == b.data, r


@pytest.fixture
def client(registry, canary):
    c = registry.client()
    yield c
    # The fixture `registry` then checks GET /v2/ and that the process runs.
    assert registry.alive(), registry.log()
    check_canary(c, canary)


def not_5xx(r):
    assert r.status < 500, "server error: %s" % r


def assert_not_served(client, repo, *digests):
    for d in digests:
        r = client.get_blob(repo, d)
        assert r.status == 404, r


# --------------------------------------------------------------------------
# Digests that do not match

@pytest.mark.parametrize("how", ["monolithic", "chunked"])
def test_wrong_digest_on_put_finish(client, how):
    repo = rh.new_repo()
    data = rh.random_bytes(3000)
    claimed = rh.digest_of(b"something else")
    loc = rh.start_upload(client, repo)
    if how == "monolithic":
        r = client.put(rh.with_query(loc, digest=claimed), body=data,
                       headers=OCTET)
    else:
        r = rh.patch_chunk(client, loc, data[:1000], 0)
        assert r.status == 202, r
        r = rh.patch_chunk(client, r.location(), data[1000:], 1000)
        assert r.status == 202, r
        r = client.put(rh.with_query(r.location(), digest=claimed))
    rh.expect_error(r, 400, "DIGEST_INVALID")
    assert_not_served(client, repo, claimed, rh.digest_of(data))


def test_wrong_sha512_digest(client):
    repo = rh.new_repo()
    data = rh.random_bytes(100)
    claimed = rh.digest_of(b"other", "sha512")
    loc = rh.start_upload(client, repo)
    r = client.put(rh.with_query(loc, digest=claimed), body=data,
                   headers=OCTET)
    rh.expect_error(r, 400, "DIGEST_INVALID")
    assert_not_served(client, repo, claimed, rh.digest_of(data),
                      rh.digest_of(data, "sha512"))


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 ignores "
                    "?digest= on POST (no single-POST uploads)")
def test_wrong_digest_on_single_post(client):
    repo = rh.new_repo()
    data = rh.random_bytes(500)
    claimed = rh.digest_of(b"not this")
    r = client.post(rh.with_query("/v2/%s/blobs/uploads/" % repo,
                                  digest=claimed), body=data, headers=OCTET)
    rh.expect_error(r, 400, "DIGEST_INVALID")
    assert_not_served(client, repo, claimed, rh.digest_of(data))


def test_manifest_digest_mismatch(client):
    """PUT by a digest that is not the body's: 400 DIGEST_INVALID, stored
    under neither digest."""
    repo = rh.new_repo()
    m = rh.build_image()
    for b in m.blobs:
        rh.push_blob(client, repo, b.data)
    wrong = rh.digest_of(b"another manifest")
    r = rh.put_manifest(client, repo, wrong, m.data, m.media_type)
    rh.expect_error(r, 400, "DIGEST_INVALID")
    for ref in (wrong, m.digest):
        assert client.get_manifest(repo, ref).status == 404


# --------------------------------------------------------------------------
# Cut-off and stalled uploads

def send_truncated(client, method, path, total, sent_bytes):
    """Sends METHOD PATH with Content-Length TOTAL but only SENT_BYTES of
    body, then closes the connection."""
    s = client.connect()
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\n"
                   "Content-Type: application/octet-stream\r\n"
                   "Content-Length: %d\r\n\r\n"
                   % (method, path, client.host, total)).encode()
                  + sent_bytes)
        time.sleep(0.2)
    finally:
        s.close()
    time.sleep(0.2)


@pytest.mark.parametrize("how", ["put", "patch", "post"])
def test_truncated_upload(client, how):
    repo = rh.new_repo()
    data = rh.random_bytes(200000)
    digest = rh.digest_of(data)
    if how == "post":
        path = rh.with_query("/v2/%s/blobs/uploads/" % repo, digest=digest)
        send_truncated(client, "POST", path, len(data), data[:50000])
    else:
        loc = rh.start_upload(client, repo)
        if how == "put":
            send_truncated(client, "PUT", rh.with_query(loc, digest=digest),
                           len(data), data[:50000])
        else:
            send_truncated(client, "PATCH", loc, len(data), data[:50000])
            # Nothing can complete the blob from what arrived.
            r = client.put(rh.with_query(loc, digest=digest))
            assert r.status in (400, 404, 416), r
    assert_not_served(client, repo, digest)
    # The repository still takes the blob in full.
    rh.push_blob(client, repo, data)
    r = client.get_blob(repo, digest)
    assert r.status == 200 and r.body == data


def test_stalled_upload_does_not_block_others(client):
    """A client that sends half a body and waits must not hold up anyone."""
    repo = rh.new_repo()
    data = rh.random_bytes(100000)
    loc = rh.start_upload(client, repo)
    s = client.connect()
    try:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: %s\r\n"
                   "Content-Type: application/octet-stream\r\n"
                   "Content-Length: %d\r\n\r\n"
                   % (rh.with_query(loc, digest=rh.digest_of(data)),
                      client.host, len(data))).encode() + data[:1000])
        quick = rh.Client(client.host, timeout=5)
        for _ in range(3):
            assert quick.get("/v2/").status == 200
        other = rh.new_repo()
        rh.push_blob(quick, other, b"meanwhile")
        assert quick.get_blob(other, rh.digest_of(b"meanwhile")).status == 200
    finally:
        s.close()
    time.sleep(0.2)
    assert_not_served(client, repo, rh.digest_of(data))


def test_many_idle_connections(client):
    """Idle connections (no request at all) do not stop the registry from
    answering."""
    socks = []
    try:
        for _ in range(20):
            socks.append(client.connect())
        assert rh.Client(client.host, timeout=5).get("/v2/").status == 200
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# Size limit (berth-registry's config)

@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry has no "
                    "max_manifest_bytes setting")
def test_manifest_over_configured_limit():
    reg = rh.start_registry({"limits": {"max_manifest_bytes": 4096}})
    try:
        c = reg.client()
        repo = rh.new_repo()
        small = rh.build_image()
        assert small.size < 4096
        rh.push_manifest(c, repo, small, ref="small")
        big = rh.build_image(annotations={"org.example.pad": "x" * 5000})
        assert big.size > 4096
        for b in big.blobs:
            rh.push_blob(c, repo, b.data)
        r = rh.put_manifest(c, repo, "big", big.data, big.media_type)
        assert r.status in (413, 400), r
        assert r.body, "no error body: %s" % r
        if r.header("Content-Type", "").startswith("application/json"):
            assert r.error_codes(), r
        for ref in ("big", big.digest):
            assert c.get_manifest(repo, ref).status == 404
        # A body that claims to be far larger than the limit.
        r = c.raw(("PUT /v2/%s/manifests/huge HTTP/1.1\r\nHost: %s\r\n"
                   "Content-Type: %s\r\nContent-Length: 100000000\r\n"
                   "Connection: close\r\n\r\n" % (repo, reg.host,
                                                 rh.OCI_MANIFEST)).encode()
                  + big.data, read_timeout=5)
        if r:
            status = int(r.split(b" ", 2)[1])
            assert status in (400, 413), r[:200]
        assert c.get_manifest(repo, "huge").status == 404
        # The limit is on manifests, not on what was stored below it.
        r = c.get_manifest(repo, "small", accept=small.media_type)
        assert r.status == 200 and r.body == small.data
        reg.check_healthy()
    finally:
        reg.stop()


# --------------------------------------------------------------------------
# Malformed manifests

def _cfg():
    return {"mediaType": rh.OCI_CONFIG, "digest": rh.EMPTY_DIGEST, "size": 2}


MALFORMED = {
    "not-json": (b"{not json", rh.OCI_MANIFEST),
    "empty": (b"", rh.OCI_MANIFEST),
    "truncated": (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci'
                  b'.image.manifest.v1+json", "config": {', rh.OCI_MANIFEST),
    "array": (b"[]", rh.OCI_MANIFEST),
    "string": (b'"manifest"', rh.OCI_MANIFEST),
    "number": (b"2", rh.OCI_MANIFEST),
    "invalid-utf8": (b'{"schemaVersion": 2, "x": "\xff\xfe"}',
                     rh.OCI_MANIFEST),
    "nul": (b'{"schemaVersion": 2\x00}', rh.OCI_MANIFEST),
    "deep": (b"[" * 100000 + b"]" * 100000, rh.OCI_MANIFEST),
    "schemaVersion-string": (json.dumps({
        "schemaVersion": "2", "mediaType": rh.OCI_MANIFEST,
        "config": _cfg(), "layers": []}).encode(), rh.OCI_MANIFEST),
    "layers-not-list": (json.dumps({
        "schemaVersion": 2, "mediaType": rh.OCI_MANIFEST,
        "config": _cfg(), "layers": "x"}).encode(), rh.OCI_MANIFEST),
    "size-string": (json.dumps({
        "schemaVersion": 2, "mediaType": rh.OCI_MANIFEST,
        "config": dict(_cfg(), size="2"), "layers": []}).encode(),
        rh.OCI_MANIFEST),
    "index-manifests-not-list": (json.dumps({
        "schemaVersion": 2, "mediaType": rh.OCI_INDEX,
        "manifests": "x"}).encode(), rh.OCI_INDEX),
    # The body's mediaType must be the Content-Type: a client SHOULD
    # reject a manifest served with another one.
    "mediaType-mismatch": (json.dumps({
        "schemaVersion": 2, "mediaType": rh.OCI_INDEX,
        "config": _cfg(), "layers": []}).encode(), rh.OCI_MANIFEST),
    "schemaVersion-1": (json.dumps({
        "schemaVersion": 1, "mediaType": rh.OCI_MANIFEST,
        "config": _cfg(), "layers": []}).encode(), rh.OCI_MANIFEST),
    "schemaVersion-3": (json.dumps({
        "schemaVersion": 3, "mediaType": rh.OCI_MANIFEST,
        "config": _cfg(), "layers": []}).encode(), rh.OCI_MANIFEST),
    "no-schemaVersion": (json.dumps({
        "mediaType": rh.OCI_MANIFEST, "config": _cfg(),
        "layers": []}).encode(), rh.OCI_MANIFEST),
    "no-config": (json.dumps({
        "schemaVersion": 2, "mediaType": rh.OCI_MANIFEST,
        "layers": []}).encode(), rh.OCI_MANIFEST),
    "config-digest-invalid": (json.dumps({
        "schemaVersion": 2, "mediaType": rh.OCI_MANIFEST,
        "config": dict(_cfg(), digest="sha256:zzz"), "layers": []}).encode(),
        rh.OCI_MANIFEST),
}
DOCKER_MALFORMED_SKIPS = {
    "schemaVersion-1": DOCKER_500, "schemaVersion-3": DOCKER_500,
    "no-schemaVersion": DOCKER_500, "config-digest-invalid": DOCKER_500,
    "no-config": "docker-registry 2.8 answers DIGEST_INVALID and "
                 "MANIFEST_BLOB_UNKNOWN, not MANIFEST_INVALID",
    "invalid-utf8": "docker-registry 2.8 reads invalid UTF-8 as JSON and "
                    "answers DIGEST_INVALID and MANIFEST_BLOB_UNKNOWN",
}


def malformed_params():
    out = []
    for k in MALFORMED:
        marks = []
        if k in DOCKER_MALFORMED_SKIPS:
            marks.append(pytest.mark.skipif(
                IS_DOCKER_REGISTRY, reason=DOCKER_MALFORMED_SKIPS[k]))
        out.append(pytest.param(k, id=k, marks=marks))
    return out


@pytest.mark.parametrize("case", malformed_params())
def test_malformed_manifest(client, case):
    repo = rh.new_repo()
    # The empty config is there, so a manifest naming it is not rejected
    # for a missing blob.
    rh.push_blob(client, repo, rh.EMPTY_JSON)
    body, media_type = MALFORMED[case]
    r = rh.put_manifest(client, repo, "bad", body, media_type)
    rh.expect_error(r, 400, "MANIFEST_INVALID")
    assert client.get_manifest(repo, "bad").status == 404
    assert client.get_manifest(repo, rh.digest_of(body)).status == 404


# --------------------------------------------------------------------------
# Invalid names

def name_params():
    p = [
        pytest.param("Upper/case", id="upper-case", marks=pytest.mark.skipif(
            IS_DOCKER_REGISTRY, reason="docker-registry 2.8 starts uploads "
            "(202) for upper-case names")),
        pytest.param("a-/b", id="trailing-separator"),
        pytest.param("-a/b", id="leading-separator"),
        pytest.param("a..b/c", id="double-dot-in-component"),
        pytest.param("a/b_", id="trailing-underscore"),
        pytest.param("a/b%20c", id="space"),
        pytest.param("a/b%00c", id="nul"),
        pytest.param("a" * 256, id="too-long-one-component",
                     marks=pytest.mark.skipif(IS_DOCKER_REGISTRY,
                                              reason=DOCKER_500)),
        pytest.param("/".join(["abcdefg"] * 40), id="too-long-many",
                     marks=pytest.mark.skipif(IS_DOCKER_REGISTRY,
                                              reason=DOCKER_500)),
    ]
    for name, ident in (("/lead", "leading-slash"), ("a//b", "empty-component"),
                        ("a/../b", "dot-dot"), ("a/./b", "dot"),
                        ("../../../../../../../../tmp/%s" % ESCAPE,
                         "traversal"),
                        ("%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/tmp/" + ESCAPE,
                         "encoded-traversal")):
        p.append(pytest.param(name, id=ident, marks=pytest.mark.skipif(
            IS_DOCKER_REGISTRY, reason=DOCKER_DOT_SEGMENTS)))
    return p


ESCAPE = "berth-escape-%s" % uuid.uuid4().hex[:8]


def expect_name_rejected(r):
    """400 NAME_INVALID, or 404 (the path names no repository)."""
    assert r.status in (400, 404), r
    if r.status == 400:
        assert "NAME_INVALID" in r.error_codes(), r


@pytest.mark.parametrize("name", name_params())
def test_invalid_repository_name(client, name):
    m = rh.build_image(layers=0)
    data = b"payload"
    requests = [
        ("GET", "/v2/%s/tags/list" % name, None, {}),
        ("GET", "/v2/%s/manifests/latest" % name, None,
         {"Accept": rh.ACCEPT_ALL}),
        ("GET", "/v2/%s/blobs/%s" % (name, rh.digest_of(data)), None, {}),
        ("POST", "/v2/%s/blobs/uploads/" % name, None, {}),
        ("POST", "/v2/%s/blobs/uploads/?digest=%s" % (
            name, rh.digest_of(data)), data, OCTET),
        ("PUT", "/v2/%s/manifests/latest" % name, m.data,
         {"Content-Type": m.media_type}),
        ("DELETE", "/v2/%s/manifests/%s" % (name, m.digest), None, {}),
    ]
    for method, path, body, headers in requests:
        r = client.request(method, path, body=body, headers=headers)
        expect_name_rejected(r)
    assert not os.path.exists("/tmp/" + ESCAPE), "wrote outside the root"


def test_longest_valid_name(client):
    """255 characters in all is still a valid name."""
    name = "/".join(["a" * 63] * 4)
    assert len(name) == 255
    m = rh.build_image(layers=1)
    rh.push_manifest(client, name, m, ref="v1")
    r = client.get_manifest(name, "v1", accept=m.media_type)
    assert r.status == 200 and r.body == m.data, r


def test_name_with_every_separator(client):
    name = "a.b/c_d/e__f/g-h/i--j/k.l-m_n"
    m = rh.build_image(layers=1)
    rh.push_manifest(client, name, m, ref="v1")
    r = client.get_manifest(name, "v1", accept=m.media_type)
    assert r.status == 200 and r.body == m.data, r
    assert client.tags(name).json() == {"name": name, "tags": ["v1"]}


# --------------------------------------------------------------------------
# Invalid tags

BAD_TAGS = [("-lead", "leading-dash"), (".lead", "leading-dot"),
            ("a" * 129, "129-chars"), ("a+b", "plus"), ("a%20b", "space"),
            ("a%2Fb", "encoded-slash"), ("%C3%A9t%C3%A9", "non-ascii")]


@pytest.mark.parametrize("tag", [pytest.param(t, id=i) for t, i in BAD_TAGS])
def test_invalid_tag(client, tag):
    repo = rh.new_repo()
    m = rh.build_image(layers=1)
    rh.push_manifest(client, repo, m, ref="good")
    r = rh.put_manifest(client, repo, tag, m.data, m.media_type)
    assert r.status in (400, 404), r
    if r.status == 400:
        assert set(r.error_codes()) & {"MANIFEST_INVALID", "TAG_INVALID",
                                       "NAME_INVALID"}, r
    r = client.get_manifest(repo, tag)
    assert r.status in (400, 404), r
    assert client.tags(repo).json()["tags"] == ["good"]


def test_longest_valid_tag(client):
    repo = rh.new_repo()
    m = rh.build_image(layers=1)
    tag = "_" + "a" * 126 + "Z"
    assert len(tag) == 128
    rh.push_manifest(client, repo, m, ref=tag)
    r = client.get_manifest(repo, tag, accept=m.media_type)
    assert r.status == 200 and r.body == m.data, r
    assert client.tags(repo).json()["tags"] == [tag]


# --------------------------------------------------------------------------
# Ranges

def test_unsatisfiable_range_is_416(client):
    repo = rh.new_repo()
    data = rh.random_bytes(100)
    rh.push_blob(client, repo, data)
    for spec in ("bytes=1000-2000", "bytes=100-", "bytes=100-100"):
        r = client.get_blob(repo, rh.digest_of(data),
                            headers={"Range": spec})
        assert r.status == 416, (spec, r)
        cr = r.header("Content-Range")
        assert cr in (None, "bytes */100"), (spec, r)


def test_invalid_range_ignored_or_416(client):
    """RFC 9110: a server MAY ignore or reject an invalid Range: 200 with
    the whole blob, or 416."""
    repo = rh.new_repo()
    data = rh.random_bytes(100)
    rh.push_blob(client, repo, data)
    for spec in ("bytes=5-2", "bytes=abc", "items=0-1", "bytes=--1",
                 "bytes=0-1" + ",0-1" * 1000):
        r = client.get_blob(repo, rh.digest_of(data),
                            headers={"Range": spec})
        assert r.status in (200, 206, 416), (spec, r)
        if r.status == 200:
            assert r.body == data, spec


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 ignores "
                    "Content-Range on PATCH")
def test_invalid_content_range_on_patch(client):
    repo = rh.new_repo()
    data = rh.random_bytes(10)
    loc = rh.start_upload(client, repo)
    for cr in ("abc", "5-2", "0-", "-9", "bytes 0-9/10", "0-99",
               "0-18446744073709551616"):
        r = client.patch(loc, body=data, headers={
            "Content-Type": "application/octet-stream", "Content-Range": cr})
        assert r.status in (400, 416), (cr, r)
    # The upload is still empty and usable.
    r = rh.patch_chunk(client, loc, data, 0)
    assert r.status == 202, r
    r = client.put(rh.with_query(r.location(), digest=rh.digest_of(data)))
    assert r.status == 201, r
    assert client.get_blob(repo, rh.digest_of(data)).body == data


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 ignores "
                    "Content-Range on PUT")
def test_final_chunk_out_of_order_is_416(client):
    repo = rh.new_repo()
    data = rh.random_bytes(30)
    loc = rh.start_upload(client, repo)
    r = rh.patch_chunk(client, loc, data[:10], 0)
    assert r.status == 202, r
    loc = r.location()
    r = client.put(rh.with_query(loc, digest=rh.digest_of(data)),
                   body=data[20:],
                   headers={"Content-Type": "application/octet-stream",
                            "Content-Range": "20-29"})
    assert r.status == 416, r
    assert_not_served(client, repo, rh.digest_of(data))


# --------------------------------------------------------------------------
# Invalid digests

BAD_DIGESTS = ["sha256:zzz", "sha256:" + "0" * 10, "sha256:" + "A" * 64,
               "sha256:" + "0" * 65, "md5:" + "0" * 32, "sha256", "sha256:",
               ":" + "0" * 64, "nothing"]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_invalid_digest_on_put_finish(client, digest):
    repo = rh.new_repo()
    data = rh.random_bytes(64)
    loc = rh.start_upload(client, repo)
    r = client.put(rh.with_query(loc, digest=digest), body=data,
                   headers=OCTET)
    rh.expect_error(r, 400, "DIGEST_INVALID")
    assert_not_served(client, repo, rh.digest_of(data))


def test_missing_digest_on_put_finish(client):
    repo = rh.new_repo()
    data = rh.random_bytes(64)
    loc = rh.start_upload(client, repo)
    r = client.put(loc, body=data, headers=OCTET)
    rh.expect_error(r, 400, "DIGEST_INVALID", "BLOB_UPLOAD_INVALID")
    assert_not_served(client, repo, rh.digest_of(data))


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 ignores "
                    "?digest= on POST (no single-POST uploads)")
@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_invalid_digest_on_single_post(client, digest):
    repo = rh.new_repo()
    data = rh.random_bytes(64)
    r = client.post(rh.with_query("/v2/%s/blobs/uploads/" % repo,
                                  digest=digest), body=data, headers=OCTET)
    rh.expect_error(r, 400, "DIGEST_INVALID")
    assert_not_served(client, repo, rh.digest_of(data))


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_invalid_digest_in_blob_url(client, digest):
    repo = rh.new_repo()
    rh.push_blob(client, repo, b"present")
    for method in ("GET", "HEAD", "DELETE"):
        r = client.request(method, "/v2/%s/blobs/%s" % (repo, digest))
        assert r.status in (400, 404), (method, r)
        if r.status == 400 and method != "HEAD":
            assert "DIGEST_INVALID" in r.error_codes(), r


@pytest.mark.parametrize("digest", [
    pytest.param(d, marks=pytest.mark.skipif(
        IS_DOCKER_REGISTRY and all(d.split(":", 1)), reason=DOCKER_500))
    for d in BAD_DIGESTS if ":" in d])
def test_invalid_digest_as_manifest_reference(client, digest):
    """Neither a tag (":" is not allowed in one) nor a valid digest: 400 or
    404, and nothing is stored under it."""
    repo = rh.new_repo()
    m = rh.build_image(layers=0)
    rh.push_manifest(client, repo, m, ref="v1")
    for method in ("GET", "HEAD", "DELETE"):
        r = client.request(method, "/v2/%s/manifests/%s" % (repo, digest),
                           headers={"Accept": rh.ACCEPT_ALL})
        assert r.status in (400, 404), (method, r)
    r = rh.put_manifest(client, repo, digest, m.data, m.media_type)
    assert r.status in (400, 404), r


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 has no "
                    "referrers API")
@pytest.mark.parametrize("digest", [d for d in BAD_DIGESTS
                                    if d.startswith(("sha256:", "md5:"))])
def test_invalid_digest_in_referrers(client, digest):
    repo = rh.new_repo()
    rh.push_manifest(client, repo, rh.build_image(layers=0), ref="v1")
    r = client.get("/v2/%s/referrers/%s" % (repo, digest))
    assert r.status == 400, r


def test_invalid_digest_in_mount(client):
    """A mount that cannot happen falls back to an upload session (202), or
    the request is refused (400)."""
    repo = rh.new_repo()
    rh.push_blob(client, repo, b"present")
    r = client.post(rh.with_query("/v2/%s/blobs/uploads/" % rh.new_repo(),
                                  mount="sha256:zzz", **{"from": repo}))
    assert r.status in (202, 400), r
    if r.status == 400:
        assert "DIGEST_INVALID" in r.error_codes(), r


# --------------------------------------------------------------------------
# Unknown upload sessions

@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 checks "
                    "its _state token first and answers BLOB_UPLOAD_INVALID")
def test_unknown_upload_session(client):
    repo = rh.new_repo()
    rh.push_blob(client, repo, b"present")
    for sid in (str(uuid.uuid4()), "not-a-uuid", "..", "a" * 300):
        loc = "/v2/%s/blobs/uploads/%s" % (repo, sid)
        for r in (client.get(loc),
                  rh.patch_chunk(client, loc, b"abc", 0),
                  client.put(rh.with_query(loc, digest=rh.digest_of(b"abc")),
                             body=b"abc", headers=OCTET),
                  client.delete(loc)):
            assert r.status in (400, 404), (sid, r)
            if r.status == 404:
                assert "BLOB_UPLOAD_UNKNOWN" in r.error_codes(), r
    assert_not_served(client, repo, rh.digest_of(b"abc"))


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 checks "
                    "its _state token first and answers BLOB_UPLOAD_INVALID")
def test_upload_session_of_another_repository(client):
    a, b = rh.new_repo(), rh.new_repo()
    loc = rh.start_upload(client, a)
    other = loc.replace("/v2/%s/" % a, "/v2/%s/" % b)
    assert other != loc
    rh.expect_error(client.get(other), 404, "BLOB_UPLOAD_UNKNOWN")
    data = b"cross"
    r = client.put(rh.with_query(other, digest=rh.digest_of(data)),
                   body=data, headers=OCTET)
    rh.expect_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_not_served(client, b, rh.digest_of(data))
    assert_not_served(client, a, rh.digest_of(data))
    # The session still belongs to a.
    r = client.put(rh.with_query(loc, digest=rh.digest_of(data)), body=data,
                   headers=OCTET)
    assert r.status == 201, r


# --------------------------------------------------------------------------
# Odd requests

def test_invalid_paging_parameters(client):
    repo = rh.new_repo()
    rh.push_manifest(client, repo, rh.build_image(layers=0), ref="v1")
    for q in ("n=-1", "n=abc", "n=99999999999999999999", "n=", "last=%00",
              "n=1&n=2", "last=" + "z" * 1000):
        for path in ("/v2/%s/tags/list?%s" % (repo, q), "/v2/_catalog?" + q):
            r = client.get(path)
            assert r.status in (200, 400), (path, r)
            if r.status == 400:
                assert r.error_codes(), r


def test_wrong_methods(client):
    repo = rh.new_repo()
    m = rh.build_image(layers=0)
    rh.push_manifest(client, repo, m, ref="v1")
    for method, path in (("PUT", "/v2/_catalog"), ("DELETE", "/v2/_catalog"),
                         ("POST", "/v2/%s/manifests/v1" % repo),
                         ("PATCH", "/v2/%s/manifests/v1" % repo),
                         ("POST", "/v2/%s/tags/list" % repo),
                         ("PUT", "/v2/%s/blobs/%s" % (repo, m.digest))):
        r = client.request(method, path)
        assert r.status in (400, 404, 405, 501), (method, path, r)
    assert client.get_manifest(repo, "v1").body == m.data


def test_unknown_paths(client):
    for path in ("/v1/", "/v2/x", "/v3/", "/v2/a/b/c/unknown",
                 "/v2/_catalog/extra", "/%ff%fe", "/v2/" + "a/" * 2000):
        r = client.get(path)
        assert r.status in (400, 404, 414), (path, r)


def parse_status(raw):
    """The status code of a raw HTTP response, None for no response."""
    if not raw:
        return None
    line = raw.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1."), raw[:200]
    return int(line.split(b" ", 2)[1])


RAW = {
    "garbage": b"GARBAGE\r\n\r\n",
    "binary": bytes(range(256)) * 4,
    "http09": b"GET /v2/\r\n\r\n",
    "bad-version": b"GET /v2/ HTTP/9.9\r\nHost: x\r\n\r\n",
    "negative-length": b"PUT /v2/x/y/manifests/z HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: -1\r\n\r\n",
    "two-lengths": b"PUT /v2/x/y/manifests/z HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    "huge-length": b"PUT /v2/x/y/manifests/z HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 99999999999999999999999\r\n\r\nab",
    "huge-header": b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: "
                   + b"a" * 200000 + b"\r\n\r\n",
    "many-headers": b"GET /v2/ HTTP/1.1\r\nHost: x\r\n"
                    + b"".join(b"X-%d: y\r\n" % i for i in range(5000))
                    + b"\r\n",
    "long-url": b"GET /v2/" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header-no-colon": b"GET /v2/ HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n",
    "nul-in-path": b"GET /v2/\x00/tags/list HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(RAW))
def test_broken_http(client, case):
    """Broken HTTP gets a 4xx (505 for an unknown version), or the
    connection is closed; the registry goes on serving."""
    status = parse_status(client.raw(RAW[case], read_timeout=5))
    assert status is None or 400 <= status < 500 or \
        (case in ("bad-version", "http09") and status == 505) or \
        (case in ("huge-header", "many-headers") and status == 200), status


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason=DOCKER_500)
def test_broken_chunked_encoding(client):
    repo = rh.new_repo()
    loc = rh.start_upload(client, repo)
    for body in (b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nabc\r\n0\r\n\r\n",
                 b"ffffffffffffffffffff\r\nabc\r\n"):
        raw = (b"PATCH %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
               b"\r\nContent-Type: application/octet-stream\r\n\r\n"
               % loc.encode()) + body
        status = parse_status(client.raw(raw, read_timeout=5))
        assert status is None or 400 <= status < 500, (body, status)
    assert_not_served(client, repo, rh.digest_of(b"abc"))
