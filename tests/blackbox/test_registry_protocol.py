"""The registry's HTTP API against the OCI Distribution Spec 1.1: every
endpoint, with the status codes, headers and bodies the spec requires.

All tests share one registry per module (registry_helpers.registry_server)
and use fresh repository names; the catalog tests get a registry of their
own.  After each test the fixture checks that the registry still runs and
answers GET /v2/.

Run against docker-registry 2.8 (BERTH_REGISTRY=docker-registry), the tests
of what it lacks are skipped with the reason: no referrers API, no tag
paging, unsorted tag lists, no ?tag= on manifest PUT, no single-POST
uploads, wrong codes for out-of-order or repeated chunks.
"""
import random

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


def blob_path(repo, digest):
    return "/v2/%s/blobs/%s" % (repo, digest)


def manifest_path(repo, ref):
    return "/v2/%s/manifests/%s" % (repo, ref)


def tag_set(client, repo):
    """The repository's tags, sorted here: their order is
    test_tags_list_sorted's business."""
    r = client.tags(repo)
    assert r.status == 200, r
    assert r.json()["name"] == repo, r
    return sorted(r.json()["tags"] or [])


def assert_blob_served(client, repo, data, digest=None):
    """GET and HEAD of the blob: 200, Content-Length, Docker-Content-Digest
    (when present, a digest of the body), the exact bytes."""
    digest = digest or rh.digest_of(data)
    r = client.get_blob(repo, digest)
    assert r.status == 200, r
    assert r.body == data, "GET %s returned other bytes" % digest
    assert int(r.header("Content-Length")) == len(data), r
    dcd = r.header("Docker-Content-Digest")
    assert dcd is not None, r
    alg = dcd.split(":", 1)[0]
    assert dcd == rh.digest_of(data, alg), r
    h = client.get_blob(repo, digest, method="HEAD")
    assert h.status == 200, h
    assert h.body == b"", h
    assert int(h.header("Content-Length")) == len(data), h
    assert h.header("Docker-Content-Digest") == dcd, h


def assert_location_serves(client, r, data, accept=None):
    """The Location of a 201 is a pullable URL of what was pushed."""
    g = client.get(r.location(),
                   headers={"Accept": accept} if accept else None)
    assert g.status == 200, (r, g)
    assert g.body == data, "GET %s: other bytes" % r.location()


def assert_blob_unknown(client, repo, digest):
    r = client.get_blob(repo, digest)
    rh.expect_error(r, 404, "BLOB_UNKNOWN")
    assert client.get_blob(repo, digest, method="HEAD").status == 404


def assert_manifest_served(client, repo, ref, m, accept=None):
    """GET and HEAD by REF: 200, Content-Type = the manifest's mediaType,
    Docker-Content-Digest, Content-Length, byte-for-byte body."""
    accept = accept or m.media_type
    r = client.get_manifest(repo, ref, accept=accept)
    assert r.status == 200, r
    assert r.body == m.data, "GET %s: body differs from what was pushed" % ref
    assert r.header("Content-Type").split(";")[0].strip() == m.media_type, r
    assert r.header("Docker-Content-Digest") == m.digest, r
    assert int(r.header("Content-Length")) == m.size, r
    h = client.get_manifest(repo, ref, accept=accept, method="HEAD")
    assert h.status == 200, h
    assert h.body == b""
    assert h.header("Content-Type").split(";")[0].strip() == m.media_type, h
    assert h.header("Docker-Content-Digest") == m.digest, h
    assert int(h.header("Content-Length")) == m.size, h


# --------------------------------------------------------------------------
# /v2/

def test_base_endpoint(client):
    r = client.get("/v2/")
    assert r.status == 200, r
    assert r.header("Docker-Distribution-API-Version") == "registry/2.0", r


# --------------------------------------------------------------------------
# Blob uploads

@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 ignores "
                    "?digest= on POST and answers 202 (no single-POST "
                    "uploads)")
def test_blob_single_post(client):
    repo = rh.new_repo()
    data = rh.random_bytes(4096)
    digest = rh.digest_of(data)
    r = client.post(rh.with_query("/v2/%s/blobs/uploads/" % repo,
                                  digest=digest), body=data, headers=OCTET)
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == digest, r
    assert_location_serves(client, r, data)
    assert_blob_served(client, repo, data)


def test_blob_post_then_put(client):
    repo = rh.new_repo()
    data = rh.random_bytes(10000)
    digest = rh.digest_of(data)
    r = client.post("/v2/%s/blobs/uploads/" % repo)
    assert r.status == 202, r
    loc = r.location()
    assert loc.startswith("/v2/%s/blobs/uploads/" % repo), r
    # The blob is not there until the session is closed.
    assert_blob_unknown(client, repo, digest)
    r = client.put(rh.with_query(loc, digest=digest), body=data,
                   headers=OCTET)
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == digest, r
    assert_location_serves(client, r, data)
    assert_blob_served(client, repo, data)


def test_upload_sessions_are_distinct(client):
    repo = rh.new_repo()
    a = rh.start_upload(client, repo)
    b = rh.start_upload(client, repo)
    assert a.split("?")[0] != b.split("?")[0]
    da, db = rh.random_bytes(100), rh.random_bytes(200)
    assert client.put(rh.with_query(b, digest=rh.digest_of(db)),
                      body=db, headers=OCTET).status == 201
    assert client.put(rh.with_query(a, digest=rh.digest_of(da)),
                      body=da, headers=OCTET).status == 201
    assert_blob_served(client, repo, da)
    assert_blob_served(client, repo, db)


def test_blob_chunked_upload(client):
    repo = rh.new_repo()
    r = client.post("/v2/%s/blobs/uploads/" % repo)
    assert r.status == 202, r
    loc = r.location()
    chunk = max(64 * 1024, rh.chunk_min_length(r))
    data = rh.random_bytes(2 * chunk + 1234)
    digest = rh.digest_of(data)
    for off in range(0, len(data), chunk):
        piece = data[off:off + chunk]
        r = rh.patch_chunk(client, loc, piece, off)
        assert r.status == 202, r
        assert r.header("Range") == "0-%d" % (off + len(piece) - 1), r
        loc = r.location()
        # The upload's status: 204 with Range, Location, Docker-Upload-UUID.
        s = client.get(loc)
        assert s.status == 204, s
        assert s.body == b""
        assert s.header("Range") == "0-%d" % (off + len(piece) - 1), s
        uid = s.header("Docker-Upload-UUID")
        assert uid, s
        assert uid in s.location(), s
        loc = s.location()
    assert_blob_unknown(client, repo, digest)
    r = client.put(rh.with_query(loc, digest=digest))
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == digest, r
    assert_location_serves(client, r, data)
    assert_blob_served(client, repo, data)


def test_blob_chunked_last_chunk_in_put(client):
    repo = rh.new_repo()
    data = rh.random_bytes(3000)
    digest = rh.digest_of(data)
    loc = rh.start_upload(client, repo)
    r = rh.patch_chunk(client, loc, data[:2000], 0)
    assert r.status == 202, r
    r = client.put(rh.with_query(r.location(), digest=digest),
                   body=data[2000:],
                   headers={"Content-Type": "application/octet-stream",
                            "Content-Range": "2000-2999"})
    assert r.status == 201, r
    assert_blob_served(client, repo, data)


def test_blob_streamed_patch(client):
    """PATCH without Content-Range appends to the upload (the conformance
    suite's "streamed" upload)."""
    repo = rh.new_repo()
    data = rh.random_bytes(5000)
    loc = rh.start_upload(client, repo)
    r = client.patch(loc, body=data[:3000], headers=OCTET)
    assert r.status == 202, r
    assert r.header("Range") == "0-2999", r
    r = client.patch(r.location(), body=data[3000:], headers=OCTET)
    assert r.status == 202, r
    assert r.header("Range") == "0-4999", r
    r = client.put(rh.with_query(r.location(), digest=rh.digest_of(data)))
    assert r.status == 201, r
    assert_blob_served(client, repo, data)


def test_blob_patch_with_chunked_transfer_encoding(client):
    """PATCH bodies sent with Transfer-Encoding: chunked (no
    Content-Length), as containerd and the Docker daemon send them."""
    repo = rh.new_repo()
    data = rh.random_bytes(100000)
    loc = rh.start_upload(client, repo)
    pieces = [data[i:i + 7000] for i in range(0, len(data), 7000)]
    r = client.patch(loc, body=iter(pieces), headers=OCTET, chunked=True)
    assert r.status == 202, r
    assert r.header("Range") == "0-%d" % (len(data) - 1), r
    r = client.put(rh.with_query(r.location(), digest=rh.digest_of(data)))
    assert r.status == 201, r
    assert_blob_served(client, repo, data)


def test_blob_put_with_chunked_transfer_encoding(client):
    repo = rh.new_repo()
    data = rh.random_bytes(50000)
    loc = rh.start_upload(client, repo)
    pieces = [data[i:i + 4096] for i in range(0, len(data), 4096)]
    r = client.request("PUT", rh.with_query(loc, digest=rh.digest_of(data)),
                       body=iter(pieces), headers=OCTET, chunked=True)
    assert r.status == 201, r
    assert_blob_served(client, repo, data)


def test_blob_chunked_helper_many_chunks(client):
    repo = rh.new_repo()
    data = rh.random_bytes(10 * 1024 + 7)
    rh.push_blob_chunked(client, repo, data, 1024)
    assert_blob_served(client, repo, data)


def test_empty_blob(client):
    repo = rh.new_repo()
    rh.push_blob_put(client, repo, b"")
    assert_blob_served(client, repo, b"")


def test_upload_cancel(client):
    repo = rh.new_repo()
    data = rh.random_bytes(100)
    loc = rh.start_upload(client, repo)
    r = rh.patch_chunk(client, loc, data[:50], 0)
    assert r.status == 202, r
    loc = r.location()
    r = client.delete(loc)
    assert r.status == 204, r
    rh.expect_error(client.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    rh.expect_error(rh.patch_chunk(client, loc, data[50:], 50), 404,
                    "BLOB_UPLOAD_UNKNOWN")
    r = client.put(rh.with_query(loc, digest=rh.digest_of(data[:50])))
    rh.expect_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_blob_unknown(client, repo, rh.digest_of(data[:50]))


def test_upload_closed_after_put(client):
    """A session ends with its PUT: the URL is then unknown."""
    repo = rh.new_repo()
    data = rh.random_bytes(100)
    loc = rh.start_upload(client, repo)
    assert client.put(rh.with_query(loc, digest=rh.digest_of(data)),
                      body=data, headers=OCTET).status == 201
    rh.expect_error(client.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 answers "
                    "404 BLOB_UPLOAD_INVALID to out-of-order chunks, not 416")
def test_chunk_out_of_order_is_416(client):
    repo = rh.new_repo()
    data = rh.random_bytes(30)
    loc = rh.start_upload(client, repo)
    # The first chunk must start at 0.
    r = rh.patch_chunk(client, loc, data[10:20], 10)
    assert r.status == 416, r
    r = rh.patch_chunk(client, loc, data[:10], 0)
    assert r.status == 202, r
    loc = r.location()
    # A gap: 20-29 after 0-9.
    r = rh.patch_chunk(client, loc, data[20:30], 20)
    assert r.status == 416, r
    # The session survives a 416: its status still says 0-9 ...
    s = client.get(loc)
    assert s.status == 204, s
    assert s.header("Range") == "0-9", s
    # ... and the upload goes on from there.
    r = rh.patch_chunk(client, s.location(), data[10:30], 10)
    assert r.status == 202, r
    assert r.header("Range") == "0-29", r
    r = client.put(rh.with_query(r.location(), digest=rh.digest_of(data)))
    assert r.status == 201, r
    assert_blob_served(client, repo, data)


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 appends "
                    "a repeated chunk (202) instead of answering 416")
def test_chunk_repeated_is_416(client):
    repo = rh.new_repo()
    data = rh.random_bytes(20)
    loc = rh.start_upload(client, repo)
    r = rh.patch_chunk(client, loc, data[:10], 0)
    assert r.status == 202, r
    loc = r.location()
    r = rh.patch_chunk(client, loc, data[:10], 0)
    assert r.status == 416, r
    # An overlapping chunk too.
    r = rh.patch_chunk(client, loc, data[5:15], 5)
    assert r.status == 416, r
    s = client.get(loc)
    assert s.status == 204 and s.header("Range") == "0-9", s
    r = rh.patch_chunk(client, s.location(), data[10:], 10)
    assert r.status == 202, r
    r = client.put(rh.with_query(r.location(), digest=rh.digest_of(data)))
    assert r.status == 201, r
    assert_blob_served(client, repo, data)


# --------------------------------------------------------------------------
# Blob reads and deletes

def test_blob_unknown(client):
    repo = rh.new_repo()
    rh.push_blob(client, repo, b"something")
    assert_blob_unknown(client, repo, rh.digest_of(b"something else"))


def test_blob_is_per_repository(client):
    """A blob pushed to one repository is not served from another."""
    a, b = rh.new_repo(), rh.new_repo()
    data = rh.random_bytes(64)
    rh.push_blob(client, a, data)
    rh.push_blob(client, b, b"other")
    assert_blob_unknown(client, b, rh.digest_of(data))


def test_blob_range_get(client):
    repo = rh.new_repo()
    data = rh.random_bytes(1000)
    digest = rh.digest_of(data)
    rh.push_blob(client, repo, data)
    cases = [("bytes=100-199", 100, 199), ("bytes=0-0", 0, 0),
             ("bytes=990-", 990, 999), ("bytes=-10", 990, 999),
             ("bytes=900-5000", 900, 999)]
    for spec, first, last in cases:
        r = client.get_blob(repo, digest, headers={"Range": spec})
        assert r.status == 206, (spec, r)
        assert r.header("Content-Range") == "bytes %d-%d/1000" % (
            first, last), (spec, r)
        assert r.body == data[first:last + 1], spec
        assert int(r.header("Content-Length")) == last - first + 1, r


def test_blob_delete(client):
    repo = rh.new_repo()
    keep, gone = rh.random_bytes(100), rh.random_bytes(100)
    rh.push_blob(client, repo, keep)
    rh.push_blob(client, repo, gone)
    r = client.delete(blob_path(repo, rh.digest_of(gone)))
    assert r.status == 202, r
    assert_blob_unknown(client, repo, rh.digest_of(gone))
    rh.expect_error(client.delete(blob_path(repo, rh.digest_of(gone))), 404,
                    "BLOB_UNKNOWN")
    assert_blob_served(client, repo, keep)
    # The same bytes can be pushed again.
    rh.push_blob(client, repo, gone)
    assert_blob_served(client, repo, gone)


def test_blob_delete_in_one_repository_only(client):
    a, b = rh.new_repo(), rh.new_repo()
    data = rh.random_bytes(100)
    rh.push_blob(client, a, data)
    rh.push_blob(client, b, data)
    assert client.delete(blob_path(a, rh.digest_of(data))).status == 202
    assert_blob_unknown(client, a, rh.digest_of(data))
    assert_blob_served(client, b, data)


def test_cross_repository_mount(client):
    src, dst = rh.new_repo(), rh.new_repo()
    data = rh.random_bytes(2048)
    digest = rh.digest_of(data)
    rh.push_blob(client, src, data)
    r = client.post(rh.with_query("/v2/%s/blobs/uploads/" % dst,
                                  mount=digest, **{"from": src}))
    assert r.status == 201, r
    assert r.location() == blob_path(dst, digest), r
    assert r.header("Docker-Content-Digest") == digest, r
    assert_blob_served(client, dst, data)
    assert_blob_served(client, src, data)
    # The mounted blob lives on when the source's link goes.
    assert client.delete(blob_path(src, digest)).status == 202
    assert_blob_served(client, dst, data)


def test_mount_of_unknown_blob_starts_upload(client):
    src, dst = rh.new_repo(), rh.new_repo()
    rh.push_blob(client, src, b"present")
    data = rh.random_bytes(300)
    digest = rh.digest_of(data)
    r = client.post(rh.with_query("/v2/%s/blobs/uploads/" % dst,
                                  mount=digest, **{"from": src}))
    assert r.status == 202, r
    loc = r.location()
    assert loc.startswith("/v2/%s/blobs/uploads/" % dst), r
    assert_blob_unknown(client, dst, digest)
    # The 202 is an ordinary upload session.
    r = client.put(rh.with_query(loc, digest=digest), body=data,
                   headers=OCTET)
    assert r.status == 201, r
    assert_blob_served(client, dst, data)


@pytest.mark.parametrize("how", ["monolithic", "chunked"])
def test_sha512_blob(client, how):
    repo = rh.new_repo()
    data = rh.random_bytes(5000)
    digest = rh.digest_of(data, "sha512")
    if how == "monolithic":
        r = rh.push_blob(client, repo, data, digest)
    else:
        r = rh.push_blob_chunked(client, repo, data, 2000, digest)
    # Location is a pullable URL of the blob (possibly by its canonical
    # sha256 digest).
    assert_location_serves(client, r, data)
    assert_blob_served(client, repo, data, digest)


# --------------------------------------------------------------------------
# Manifests

def build_kind(kind):
    if kind == "oci-manifest":
        return rh.build_image(layers=2,
                              annotations={"org.example.kind": kind})
    if kind == "oci-index":
        return rh.build_index([rh.build_image(arch="amd64"),
                               rh.build_image(arch="arm64")],
                              annotations={"org.example.kind": kind})
    if kind == "docker-manifest":
        return rh.build_image(layers=2, docker=True)
    if kind == "docker-list":
        return rh.build_index([rh.build_image(arch="amd64", docker=True),
                               rh.build_image(arch="arm64", docker=True)],
                              docker=True)
    if kind == "artifact":
        return rh.build_artifact("application/vnd.example.sbom.v1",
                                 annotations={"org.example.kind": kind})
    if kind == "oci-manifest-no-layers":
        return rh.build_image(layers=0)
    raise AssertionError(kind)


KINDS = ["oci-manifest", "oci-index", "docker-manifest", "docker-list",
         "artifact", "oci-manifest-no-layers"]


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_push_pull(client, kind):
    repo = rh.new_repo()
    m = build_kind(kind)
    r = rh.push_manifest(client, repo, m, ref="v1")
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == m.digest, r
    assert_location_serves(client, r, m.data, accept=m.media_type)
    assert_manifest_served(client, repo, "v1", m)
    assert_manifest_served(client, repo, m.digest, m)
    # Accept listing every manifest type gives the same answer.
    assert_manifest_served(client, repo, "v1", m, accept=rh.ACCEPT_ALL)
    for c in m.children:
        assert_manifest_served(client, repo, c.digest, c)
    for b in m.blobs:
        assert_blob_served(client, repo, b.data, b.digest)


def test_artifact_manifest_fields(client):
    """An artifact: artifactType, the empty config with its data inline."""
    repo = rh.new_repo()
    m = rh.build_artifact("application/vnd.example.thing.v1", files=2)
    cfg = m.obj["config"]
    assert cfg == {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": rh.EMPTY_DIGEST, "size": 2, "data": "e30="}
    rh.push_manifest(client, repo, m, ref="art")
    assert_manifest_served(client, repo, "art", m)
    got = client.get_manifest(repo, "art", accept=rh.OCI_MANIFEST).json()
    assert got["artifactType"] == "application/vnd.example.thing.v1"
    assert got["config"] == cfg
    assert_blob_served(client, repo, b"{}", rh.EMPTY_DIGEST)


def test_manifest_push_by_digest(client):
    repo = rh.new_repo()
    m = rh.build_image()
    rh.push_manifest(client, repo, rh.build_image(), ref="other")
    r = rh.push_manifest(client, repo, m)
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == m.digest, r
    assert_location_serves(client, r, m.data, accept=m.media_type)
    assert_manifest_served(client, repo, m.digest, m)
    # No tag was made.
    assert tag_set(client, repo) == ["other"]


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 "
                    "predates ?tag= on manifest PUT (OCI-Tag)")
def test_manifest_push_by_digest_with_tags(client):
    repo = rh.new_repo()
    m = rh.build_image()
    tags = ["1.2.3", "1.2", "1", "latest"]
    path = manifest_path(repo, m.digest) + "?" + "&".join(
        "tag=" + t for t in tags)
    for b in m.blobs:
        rh.push_blob(client, repo, b.data)
    r = client.put(path, body=m.data, headers={"Content-Type": m.media_type})
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == m.digest, r
    assert sorted(rh.header_list(r, "OCI-Tag")) == sorted(tags), r
    assert tag_set(client, repo) == sorted(tags)
    for t in tags:
        assert_manifest_served(client, repo, t, m)


def test_manifest_content_type_parameters_ignored(client):
    """The registry ignores parameters on the Content-Type of a PUT and
    serves the media type without them."""
    repo = rh.new_repo()
    m = rh.build_image()
    for b in m.blobs:
        rh.push_blob(client, repo, b.data)
    r = rh.put_manifest(client, repo, "t", m.data,
                        m.media_type + "; charset=utf-8")
    assert r.status == 201, r
    assert_manifest_served(client, repo, "t", m)


def test_manifest_tag_moves(client):
    repo = rh.new_repo()
    a, b = rh.build_image(), rh.build_image()
    rh.push_manifest(client, repo, a, ref="t")
    rh.push_manifest(client, repo, b, ref="t")
    assert_manifest_served(client, repo, "t", b)
    assert_manifest_served(client, repo, a.digest, a)
    assert tag_set(client, repo) == ["t"]


def test_manifest_push_same_twice(client):
    repo = rh.new_repo()
    m = rh.build_image()
    rh.push_manifest(client, repo, m, ref="a")
    r = rh.push_manifest(client, repo, m, ref="a", push_content=False)
    assert r.header("Docker-Content-Digest") == m.digest
    assert_manifest_served(client, repo, "a", m)


def test_manifest_unknown(client):
    repo = rh.new_repo()
    rh.push_manifest(client, repo, rh.build_image(), ref="present")
    rh.expect_error(client.get_manifest(repo, "absent"), 404,
                    "MANIFEST_UNKNOWN")
    rh.expect_error(client.get_manifest(repo, rh.digest_of(b"x")), 404,
                    "MANIFEST_UNKNOWN")
    assert client.get_manifest(repo, "absent", method="HEAD").status == 404
    r = client.get_manifest(rh.new_repo(), "latest")
    rh.expect_error(r, 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_manifest_with_missing_blob(client):
    repo = rh.new_repo()
    m = rh.build_image(layers=2)
    # The config and the first layer, not the second.
    for b in m.blobs[:2]:
        rh.push_blob(client, repo, b.data)
    r = rh.put_manifest(client, repo, "t", m.data, m.media_type)
    rh.expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.get_manifest(repo, "t").status == 404
    assert client.get_manifest(repo, m.digest).status == 404
    # A missing config.
    m2 = rh.build_image(layers=1)
    rh.push_blob(client, repo, m2.blobs[1].data)
    r = rh.put_manifest(client, repo, "t2", m2.data, m2.media_type)
    rh.expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.get_manifest(repo, "t2").status == 404


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker"])
def test_index_with_missing_manifest(client, docker):
    repo = rh.new_repo()
    a, b = rh.build_image(docker=docker), rh.build_image(docker=docker)
    idx = rh.build_index([a, b], docker=docker)
    rh.push_manifest(client, repo, a)
    for blob in b.blobs:
        rh.push_blob(client, repo, blob.data)
    r = rh.put_manifest(client, repo, "t", idx.data, idx.media_type)
    rh.expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.get_manifest(repo, "t").status == 404


def test_manifest_delete_by_digest(client):
    repo = rh.new_repo()
    m, keep = rh.build_image(), rh.build_image()
    rh.push_manifest(client, repo, m, ref="gone")
    rh.push_manifest(client, repo, keep, ref="kept")
    r = client.delete(manifest_path(repo, m.digest))
    assert r.status == 202, r
    for ref in (m.digest, "gone"):
        rh.expect_error(client.get_manifest(repo, ref), 404,
                        "MANIFEST_UNKNOWN")
        assert client.get_manifest(repo, ref, method="HEAD").status == 404
    assert tag_set(client, repo) == ["kept"]
    assert_manifest_served(client, repo, "kept", keep)
    # Its blobs stay.
    for b in m.blobs:
        assert_blob_served(client, repo, b.data)
    rh.expect_error(client.delete(manifest_path(repo, m.digest)), 404,
                    "MANIFEST_UNKNOWN")
    # And it can be pushed again.
    rh.push_manifest(client, repo, m, ref="back", push_content=False)
    assert_manifest_served(client, repo, "back", m)


def test_manifest_delete_unknown_repository(client):
    r = client.delete(manifest_path(rh.new_repo(), rh.digest_of(b"x")))
    rh.expect_error(r, 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_tag_delete(client):
    """DELETE of a tag: 202 and the tag is gone (the manifest stays), or,
    where tag deletion is disabled, 400/405 and nothing changes."""
    repo = rh.new_repo()
    m = rh.build_image()
    rh.push_manifest(client, repo, m, ref="a")
    rh.push_manifest(client, repo, m, ref="b", push_content=False)
    r = client.delete(manifest_path(repo, "a"))
    assert r.status in (202, 400, 405), r
    if r.status == 202:
        rh.expect_error(client.get_manifest(repo, "a"), 404,
                        "MANIFEST_UNKNOWN")
        assert tag_set(client, repo) == ["b"]
    else:
        assert_manifest_served(client, repo, "a", m)
        assert tag_set(client, repo) == ["a", "b"]
    assert_manifest_served(client, repo, "b", m)
    assert_manifest_served(client, repo, m.digest, m)


def test_multi_platform_index_with_windows_foreign_layer(client):
    """A multi-platform Docker manifest list: linux/amd64, linux/arm64 and
    windows/amd64 (os.version 10.0.17763.5830) whose base layer is a
    foreign layer with urls, never pushed (it is pulled from its URL)."""
    repo = rh.new_repo()
    amd64 = rh.build_image(arch="amd64", docker=True)
    arm64 = rh.build_image(arch="arm64", docker=True,
                           config_extra={"variant": "v8"})
    foreign_data = rh.random_bytes(64)
    foreign = {
        "mediaType": rh.DOCKER_FOREIGN_LAYER,
        "size": 1543723913,
        "digest": rh.digest_of(foreign_data),
        "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/"
                 + rh.digest_of(foreign_data)]}
    windows = rh.build_image(
        arch="amd64", os_name="windows", docker=True, layers=1,
        config_extra={"os.version": "10.0.17763.5830"})
    # The foreign base layer comes first, as in real Windows images.
    windows.obj["layers"].insert(0, foreign)
    windows.data = rh.to_json(windows.obj)
    windows.digest = rh.digest_of(windows.data)
    windows.size = len(windows.data)
    idx = rh.build_index(
        [amd64, arm64, windows], docker=True, platforms=[
            {"architecture": "amd64", "os": "linux"},
            {"architecture": "arm64", "os": "linux", "variant": "v8"},
            {"architecture": "amd64", "os": "windows",
             "os.version": "10.0.17763.5830"}])
    r = rh.push_manifest(client, repo, idx, ref="multi")
    assert r.header("Docker-Content-Digest") == idx.digest, r
    assert_manifest_served(client, repo, "multi", idx)
    assert_manifest_served(client, repo, idx.digest, idx)
    got = client.get_manifest(repo, "multi", accept=rh.DOCKER_LIST).json()
    assert [d["platform"] for d in got["manifests"]][2] == {
        "architecture": "amd64", "os": "windows",
        "os.version": "10.0.17763.5830"}
    for child in (amd64, arm64, windows):
        assert_manifest_served(client, repo, child.digest, child)
    # The foreign layer was not pushed and is not served.
    assert_blob_unknown(client, repo, foreign["digest"])


def test_oci_index_of_indexes(client):
    """An index may list another index."""
    repo = rh.new_repo()
    inner = rh.build_index([rh.build_image(arch="amd64"),
                            rh.build_image(arch="arm64")])
    outer = rh.build_index([inner, rh.build_image(arch="s390x")])
    rh.push_manifest(client, repo, outer, ref="nested")
    assert_manifest_served(client, repo, "nested", outer)
    assert_manifest_served(client, repo, inner.digest, inner)


def test_large_manifest(client):
    """A manifest of about 1 MiB (the spec: registries should accept at
    least 4 MB; 1 MiB keeps the test fast)."""
    repo = rh.new_repo()
    m = rh.build_image(annotations={
        "org.example.filler.%04d" % i: "x" * 1000 for i in range(1000)})
    assert m.size > 1000000
    rh.push_manifest(client, repo, m, ref="big")
    assert_manifest_served(client, repo, "big", m)


# --------------------------------------------------------------------------
# Tags

TAGS = ["latest", "v1.0", "v1.0-rc1", "a", "b10", "b2", "0.1", "z", "m_1",
        "c-2"]


def push_tags(client, repo, tags):
    m = rh.build_image(layers=0)
    rh.push_manifest(client, repo, m, ref=tags[0])
    for t in tags[1:]:
        rh.push_manifest(client, repo, m, ref=t, push_content=False)
    return m


def test_tags_list(client):
    repo = rh.new_repo()
    push_tags(client, repo, TAGS)
    r = client.tags(repo)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json"), r
    doc = r.json()
    assert set(doc) == {"name", "tags"}, doc
    assert doc["name"] == repo
    assert sorted(doc["tags"]) == sorted(TAGS)


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 lists "
                    "tags in directory order, not sorted")
def test_tags_list_sorted(client):
    repo = rh.new_repo()
    shuffled = list(TAGS)
    random.shuffle(shuffled)
    push_tags(client, repo, shuffled)
    r = client.tags(repo)
    assert r.status == 200, r
    assert r.json() == {"name": repo, "tags": sorted(TAGS)}


def test_tags_unknown_repository(client):
    rh.expect_error(client.tags(rh.new_repo()), 404, "NAME_UNKNOWN")


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason="docker-registry 2.8 ignores "
                    "n and last on the tags list")
def test_tags_paging(client):
    repo = rh.new_repo()
    push_tags(client, repo, TAGS)
    want = sorted(TAGS)

    def page(r, rest, n=None):
        """R is a page of REST (the tags after `last`): a prefix, at most
        n long, shorter than n only with a Link or at the end."""
        assert r.status == 200, r
        doc = r.json()
        assert doc["name"] == repo, doc
        tags = doc["tags"] or []
        assert tags == rest[:len(tags)], (tags, rest)
        if n is not None:
            assert len(tags) <= n, r
            assert len(tags) == min(n, len(rest)) or rh.link_next(r), r
        else:
            assert tags == rest or rh.link_next(r), r
        return tags

    # n: the first n tags, and a Link to the next page.
    r = client.tags(repo, n=3)
    got = page(r, want, 3)
    assert got, r
    nxt = rh.link_next(r)
    assert nxt is not None, "no Link header: %s" % r
    assert nxt.startswith("/v2/%s/tags/list?" % repo), nxt
    # Following the Links walks the whole list once.
    pages = 1
    while nxt is not None:
        r = client.get(nxt)
        got += page(r, want[len(got):], 3)
        nxt = rh.link_next(r)
        pages += 1
        assert pages < 20, "Link headers do not end"
    assert got == want
    # last: the tags after it, not including it.
    i = want.index("b10")
    page(client.tags(repo, n=2, last="b10"), want[i + 1:], 2)
    i = want.index("m_1")
    page(client.tags(repo, last="m_1"), want[i + 1:])
    # A page holding the rest: all of it, no Link.
    r = client.tags(repo, n=100)
    assert r.json()["tags"] == want and rh.link_next(r) is None, r
    # n=0: an empty list and no Link.
    r = client.tags(repo, n=0)
    assert r.status == 200, r
    assert (r.json()["tags"] or []) == [] and rh.link_next(r) is None, r
    # last after the final tag: nothing.
    r = client.tags(repo, n=5, last=want[-1])
    assert (r.json()["tags"] or []) == [] and rh.link_next(r) is None, r


# --------------------------------------------------------------------------
# Referrers

NO_REFERRERS = "docker-registry 2.8 has no referrers API"


def referrers(client, repo, digest, **params):
    path = "/v2/%s/referrers/%s" % (repo, digest)
    if params:
        path = rh.with_query(path, **params)
    return client.get(path)


def assert_index(r):
    assert r.status == 200, r
    assert r.header("Content-Type").split(";")[0] == rh.OCI_INDEX, r
    doc = r.json()
    assert doc["schemaVersion"] == 2, doc
    assert doc["mediaType"] == rh.OCI_INDEX, doc
    return doc


def all_referrers(client, repo, digest, **params):
    r = referrers(client, repo, digest, **params)
    doc = assert_index(r)
    out = list(doc["manifests"])
    nxt = rh.link_next(r)
    while nxt is not None:
        r = client.get(nxt)
        out += assert_index(r)["manifests"]
        nxt = rh.link_next(r)
    return r, out


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason=NO_REFERRERS)
def test_referrers_push_answers_oci_subject(client):
    repo = rh.new_repo()
    subject = rh.build_image()
    rh.push_manifest(client, repo, subject, ref="v1")
    art = rh.build_artifact("application/vnd.example.sig.v1",
                            subject=subject.descriptor())
    r = rh.push_manifest(client, repo, art)
    assert r.status == 201, r
    assert r.header("OCI-Subject") == subject.digest, r
    assert r.header("Docker-Content-Digest") == art.digest, r
    assert_manifest_served(client, repo, art.digest, art)
    # A manifest without subject gets no OCI-Subject.
    r = rh.push_manifest(client, repo, rh.build_image())
    assert r.header("OCI-Subject") is None, r


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason=NO_REFERRERS)
def test_referrers_list(client):
    repo = rh.new_repo()
    subject = rh.build_image()
    rh.push_manifest(client, repo, subject, ref="v1")
    sbom = rh.build_artifact(
        "application/vnd.example.sbom.v1", subject=subject.descriptor(),
        annotations={"org.opencontainers.image.created":
                     "2024-01-01T00:00:00Z",
                     "org.example.sbom.format": "json"})
    sig = rh.build_artifact(
        "application/vnd.example.signature.v1", subject=subject.descriptor(),
        annotations={"org.example.signature.fingerprint": "abcd"})
    # An image manifest without artifactType: the config's mediaType
    # stands in for it.
    plain = rh.build_image(subject=subject.descriptor(),
                           annotations={"org.example.note": "plain"})
    # An index referrer without artifactType: none in the descriptor.
    idx = rh.build_index([rh.build_image()],
                         annotations={"org.example.note": "index"})
    idx.obj["subject"] = subject.descriptor()
    idx.data = rh.to_json(idx.obj)
    idx.digest = rh.digest_of(idx.data)
    idx.size = len(idx.data)
    # Unrelated: no subject, or another subject.
    other = rh.build_image()
    rh.push_manifest(client, repo, other)
    unrelated = rh.build_artifact("application/vnd.example.sbom.v1",
                                  subject=other.descriptor())
    for m in (sbom, sig, plain, idx, unrelated, rh.build_image()):
        rh.push_manifest(client, repo, m)

    r, got = all_referrers(client, repo, subject.digest)
    want = {
        sbom.digest: {"mediaType": rh.OCI_MANIFEST, "size": sbom.size,
                      "digest": sbom.digest,
                      "artifactType": "application/vnd.example.sbom.v1",
                      "annotations": sbom.obj["annotations"]},
        sig.digest: {"mediaType": rh.OCI_MANIFEST, "size": sig.size,
                     "digest": sig.digest,
                     "artifactType": "application/vnd.example.signature.v1",
                     "annotations": sig.obj["annotations"]},
        plain.digest: {"mediaType": rh.OCI_MANIFEST, "size": plain.size,
                       "digest": plain.digest,
                       "artifactType": rh.OCI_CONFIG,
                       "annotations": {"org.example.note": "plain"}},
        idx.digest: {"mediaType": rh.OCI_INDEX, "size": idx.size,
                     "digest": idx.digest,
                     "annotations": {"org.example.note": "index"}},
    }
    by_digest = {d["digest"]: d for d in got}
    assert len(by_digest) == len(got), "duplicate descriptors: %s" % got
    assert set(by_digest) == set(want), got
    for digest, d in want.items():
        desc = by_digest[digest]
        for k, v in d.items():
            assert desc.get(k) == v, (k, desc)
        if "artifactType" not in d:
            assert "artifactType" not in desc or not desc["artifactType"], \
                desc
    # Another subject's list holds just its referrer.
    _, got = all_referrers(client, repo, other.digest)
    assert [d["digest"] for d in got] == [unrelated.digest]


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason=NO_REFERRERS)
def test_referrers_filter_by_artifact_type(client):
    repo = rh.new_repo()
    subject = rh.build_image()
    rh.push_manifest(client, repo, subject, ref="v1")
    arts = [rh.build_artifact(t, subject=subject.descriptor())
            for t in ("application/vnd.example.sbom.v1",
                      "application/vnd.example.sbom.v1",
                      "application/vnd.example.signature.v1")]
    for a in arts:
        rh.push_manifest(client, repo, a)
    r, got = all_referrers(client, repo, subject.digest,
                           artifactType="application/vnd.example.sbom.v1")
    assert [x.strip() for x in
            (r.header("OCI-Filters-Applied") or "").split(",")] == \
        ["artifactType"], r
    assert sorted(d["digest"] for d in got) == sorted(
        a.digest for a in arts[:2])
    assert all(d["artifactType"] == "application/vnd.example.sbom.v1"
               for d in got)
    r, got = all_referrers(client, repo, subject.digest,
                           artifactType="application/vnd.example.none")
    assert got == []
    r, got = all_referrers(client, repo, subject.digest)
    assert len(got) == 3


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason=NO_REFERRERS)
def test_referrers_unknown_subject_is_empty_index(client):
    repo = rh.new_repo()
    rh.push_manifest(client, repo, rh.build_image(), ref="v1")
    r = referrers(client, repo, rh.digest_of(b"no such manifest"))
    doc = assert_index(r)
    assert doc["manifests"] == [], doc


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason=NO_REFERRERS)
def test_referrers_subject_pushed_later(client):
    """A manifest whose subject does not exist yet is accepted and listed
    once asked for."""
    repo = rh.new_repo()
    subject = rh.build_image()
    art = rh.build_artifact("application/vnd.example.sig.v1",
                            subject=subject.descriptor())
    r = rh.push_manifest(client, repo, art)
    assert r.header("OCI-Subject") == subject.digest, r
    _, got = all_referrers(client, repo, subject.digest)
    assert [d["digest"] for d in got] == [art.digest]
    rh.push_manifest(client, repo, subject, ref="v1")
    _, got = all_referrers(client, repo, subject.digest)
    assert [d["digest"] for d in got] == [art.digest]


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason=NO_REFERRERS)
def test_referrers_after_delete(client):
    repo = rh.new_repo()
    subject = rh.build_image()
    rh.push_manifest(client, repo, subject, ref="v1")
    a = rh.build_artifact("application/vnd.example.a", subject=subject.descriptor())
    b = rh.build_artifact("application/vnd.example.b", subject=subject.descriptor())
    rh.push_manifest(client, repo, a)
    rh.push_manifest(client, repo, b)
    assert client.delete(manifest_path(repo, a.digest)).status == 202
    _, got = all_referrers(client, repo, subject.digest)
    assert [d["digest"] for d in got] == [b.digest]


@pytest.mark.skipif(IS_DOCKER_REGISTRY, reason=NO_REFERRERS)
def test_referrers_are_per_repository(client):
    a, b = rh.new_repo(), rh.new_repo()
    subject = rh.build_image()
    rh.push_manifest(client, a, subject, ref="v1")
    rh.push_manifest(client, b, subject, ref="v1")
    art = rh.build_artifact("application/vnd.example.sig.v1",
                            subject=subject.descriptor())
    rh.push_manifest(client, a, art)
    _, got = all_referrers(client, a, subject.digest)
    assert [d["digest"] for d in got] == [art.digest]
    _, got = all_referrers(client, b, subject.digest)
    assert got == []


# --------------------------------------------------------------------------
# Catalog

CATALOG = ["alpha", "beta/one", "beta/two", "gamma.x/y", "zeta"]


def push_repos(client, names):
    for n in names:
        rh.push_manifest(client, n, rh.build_image(layers=0), ref="v1")


def test_catalog(fresh_registry):
    c = fresh_registry.client()
    r = c.get("/v2/_catalog")
    assert r.status == 200, r
    assert r.json().get("repositories") in ([], None), r
    shuffled = list(CATALOG)
    random.shuffle(shuffled)
    push_repos(c, shuffled)
    r = c.get("/v2/_catalog")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json"), r
    assert r.json() == {"repositories": sorted(CATALOG)}


def test_catalog_paging(fresh_registry):
    c = fresh_registry.client()
    push_repos(c, CATALOG)
    want = sorted(CATALOG)
    r = c.get("/v2/_catalog?n=2")
    assert r.status == 200, r
    assert r.json()["repositories"] == want[:2]
    nxt = rh.link_next(r)
    assert nxt is not None and nxt.startswith("/v2/_catalog?"), r
    got = list(want[:2])
    pages = 1
    while nxt is not None:
        r = c.get(nxt)
        assert r.status == 200, r
        page = r.json()["repositories"]
        assert len(page) <= 2, r
        got += page
        nxt = rh.link_next(r)
        pages += 1
        assert pages < 20, "Link headers do not end"
    assert got == want
    r = c.get(rh.with_query("/v2/_catalog", n=2, last="beta/one"))
    assert r.json()["repositories"] == ["beta/two", "gamma.x/y"], r
    r = c.get(rh.with_query("/v2/_catalog", last="gamma.x/y"))
    assert r.json()["repositories"] == ["zeta"], r
    r = c.get("/v2/_catalog?n=100")
    assert r.json()["repositories"] == want and rh.link_next(r) is None, r
    r = c.get("/v2/_catalog?n=0")
    assert r.status == 200, r
    assert r.json()["repositories"] == [] and rh.link_next(r) is None, r
