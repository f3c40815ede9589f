"""berth-registry's authentication: htpasswd Basic auth (with and without
anonymous pulls) and the built-in token service (Docker's token spec),
with raw HTTP, skopeo and podman.

Users are made with `htpasswd -Bbc` (bcrypt), the token key with `openssl
ecparam`.  docker-registry is configured by the helper module without
auth, so the whole module is skipped for it.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import pytest

pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402
# The podman and skopeo wrappers (private config, auth file, storage) and
# the cleanup of containers/image's blob-info cache.
from test_registry_clients import (  # noqa: E402,F401
    Podman, Skopeo, containers_cache)

pytestmark = pytest.mark.skipif(
    rh.IS_DOCKER_REGISTRY, reason="the helper runs docker-registry without "
    "auth; berth-registry's auth config is its own")

SERVICE = "berth-registry"


@pytest.fixture(scope="module")
def secrets():
    """An htpasswd file (alice/secret, bob/hunter2) and an EC P-256 key."""
    top = tempfile.mkdtemp(prefix="berth-regauth-", dir="/tmp")
    ht = os.path.join(top, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", ht, "alice", "secret"], check=True,
                   stderr=subprocess.DEVNULL)
    subprocess.run(["htpasswd", "-Bb", ht, "bob", "hunter2"], check=True,
                   stderr=subprocess.DEVNULL)
    key = os.path.join(top, "key.pem")
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1",
                    "-noout", "-out", key], check=True)
    try:
        yield {"htpasswd": ht, "key": key, "top": top}
    finally:
        shutil.rmtree(top, ignore_errors=True)


def htpasswd_config(secrets, anonymous_pull=False):
    return {"log_level": "warn",
            "auth": {"anonymous_pull": anonymous_pull,
                     "htpasswd": {"realm": "berth test",
                                  "path": secrets["htpasswd"]}}}


def token_config(secrets, expiration=300, anonymous_pull=False):
    return {"log_level": "warn",
            "auth": {"anonymous_pull": anonymous_pull, "token": {
                "realm": "http://127.0.0.1:{port}/token",
                "service": SERVICE, "issuer": SERVICE,
                "key": secrets["key"], "users": secrets["htpasswd"],
                "expiration_seconds": expiration,
                "acl": [
                    {"account": "alice", "name": "alice/*",
                     "actions": ["pull", "push", "delete"]},
                    {"account": "alice", "type": "registry",
                     "name": "catalog", "actions": ["*"]},
                    {"account": "bob", "name": "alice/*",
                     "actions": ["pull"]},
                    {"account": "*", "name": "public/*",
                     "actions": ["pull"]}]}}}


@pytest.fixture
def basic_registry(secrets):
    reg = rh.start_auth_registry(htpasswd_config(secrets))
    try:
        yield reg
        reg.check_healthy()
    finally:
        reg.stop()


@pytest.fixture
def anon_registry(secrets):
    reg = rh.start_auth_registry(htpasswd_config(secrets, True))
    try:
        yield reg
        reg.check_healthy()
    finally:
        reg.stop()


@pytest.fixture
def token_registry(secrets):
    reg = rh.start_auth_registry(token_config(secrets))
    try:
        yield reg
        reg.check_healthy()
    finally:
        reg.stop()


@pytest.fixture
def tmp_dir():
    d = tempfile.mkdtemp(prefix="berth-regauth-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


ALICE = rh.basic_header("alice", "secret")


def expect_challenge(r, scheme, **params):
    rh.expect_error(r, 401, "UNAUTHORIZED")
    got_scheme, got = rh.parse_challenge(r.header("WWW-Authenticate", ""))
    assert got_scheme == scheme, r
    for k, v in params.items():
        assert got.get(k) == v, (k, r)
    return got


# --------------------------------------------------------------------------
# htpasswd

def test_basic_challenge_and_credentials(basic_registry):
    anon = basic_registry.auth_client()
    expect_challenge(anon.get("/v2/"), "Basic", realm="berth test")
    expect_challenge(anon.get("/v2/_catalog"), "Basic")
    expect_challenge(anon.get_manifest("a/b", "latest"), "Basic")
    expect_challenge(anon.post("/v2/a/b/blobs/uploads/"), "Basic")

    alice = basic_registry.auth_client(ALICE)
    r = alice.get("/v2/")
    assert r.status == 200 and r.json() == {}, r
    m = rh.build_image()
    rh.push_manifest(alice, "alice/app", m, ref="v1")
    r = alice.get_manifest("alice/app", "v1")
    assert r.status == 200 and r.body == m.data, r

    for bad in (rh.basic_header("alice", "wrong"),
                rh.basic_header("nobody", "secret"),
                rh.basic_header("alice", ""), "Basic !!!notbase64",
                "Bearer abc"):
        c = basic_registry.auth_client(bad)
        expect_challenge(c.get("/v2/"), "Basic")
        expect_challenge(c.get_manifest("alice/app", "v1"), "Basic")


def test_basic_anonymous_pull(anon_registry, basic_registry):
    for reg, allowed in ((anon_registry, True), (basic_registry, False)):
        alice = reg.auth_client(ALICE)
        m = rh.build_image()
        rh.push_manifest(alice, "shared/app", m, ref="v1")
        anon = reg.auth_client()
        # containers/image sends "Basic :" when it has no credentials.
        empty = reg.auth_client(rh.basic_header("", ""))
        for c in (anon, empty):
            r = c.get_manifest("shared/app", "v1")
            if allowed:
                assert r.status == 200 and r.body == m.data, r
                b = c.get_blob("shared/app", m.blobs[0].digest, method="HEAD")
                assert b.status == 200, b
            else:
                expect_challenge(r, "Basic")
            # /v2/ still challenges, pushes and deletes need credentials.
            expect_challenge(c.get("/v2/"), "Basic")
            expect_challenge(c.post("/v2/shared/app/blobs/uploads/"), "Basic")
            expect_challenge(c.delete("/v2/shared/app/manifests/v1"), "Basic")
        # Wrong credentials are refused even for a pull.
        bad = reg.auth_client(rh.basic_header("alice", "nope"))
        expect_challenge(bad.get_manifest("shared/app", "v1"), "Basic")


def test_bad_htpasswd_refused(secrets, tmp_dir):
    path = os.path.join(tmp_dir, "plain")
    with open(path, "w") as f:
        f.write("alice:secret\n")
    reg = rh.AuthRegistry({"auth": {"htpasswd": {"path": path}}})
    try:
        with pytest.raises(AssertionError) as e:
            reg.start()
        assert "htpasswd -B" in str(e.value)
    finally:
        reg.stop()


# --------------------------------------------------------------------------
# The token service

def get_token(reg, *scopes, authorization=None, service=SERVICE):
    q = [("service", service)] + [("scope", s) for s in scopes]
    c = reg.auth_client(authorization)
    return c.get("/token?" + urllib.parse.urlencode(q))


def claims_of(token):
    def part(s):
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    h, c, _ = token.split(".")
    return part(h), part(c)


def bearer(reg, *scopes, authorization=ALICE):
    r = get_token(reg, *scopes, authorization=authorization)
    assert r.status == 200, r
    return reg.auth_client("Bearer " + r.json()["token"])


def test_token_challenge_and_issue(token_registry):
    reg = token_registry
    anon = reg.auth_client()
    realm = "http://%s/token" % reg.host
    got = expect_challenge(anon.get("/v2/"), "Bearer", realm=realm,
                           service=SERVICE)
    assert "scope" not in got
    expect_challenge(anon.get_manifest("alice/app", "v1"), "Bearer",
                     scope="repository:alice/app:pull")
    expect_challenge(anon.post("/v2/alice/app/blobs/uploads/"), "Bearer",
                     scope="repository:alice/app:pull,push")
    expect_challenge(anon.get("/v2/_catalog"), "Bearer",
                     scope="registry:catalog:*")

    r = get_token(reg, "repository:alice/app:pull,push",
                  "repository:other/x:pull", authorization=ALICE)
    assert r.status == 200, r
    doc = r.json()
    assert doc["token"] == doc["access_token"]
    assert doc["expires_in"] == 300
    assert doc["issued_at"].endswith("Z")
    header, claims = claims_of(doc["token"])
    assert header["alg"] == "ES256" and len(header["kid"]) == 59
    assert claims["iss"] == SERVICE and claims["aud"] == SERVICE
    assert claims["sub"] == "alice" and claims["jti"]
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] <= \
        claims["iat"]
    assert claims["access"] == [{"type": "repository", "name": "alice/app",
                                 "actions": ["pull", "push"]}]

    # Wrong credentials: 401; an unknown service: 400.
    r = get_token(reg, "repository:alice/app:pull",
                  authorization=rh.basic_header("alice", "bad"))
    rh.expect_error(r, 401, "UNAUTHORIZED")
    assert r.header("WWW-Authenticate", "").startswith("Basic ")
    assert get_token(reg, service="other").status == 400


def test_token_acl(token_registry):
    reg = token_registry
    alice = bearer(reg, "repository:alice/app:pull,push,delete")
    assert alice.get("/v2/").status == 200
    m = rh.build_image()
    rh.push_manifest(alice, "alice/app", m, ref="v1")
    assert alice.get_manifest("alice/app", "v1").status == 200
    # The token covers alice/app only.
    got = expect_challenge(alice.get_manifest("public/app", "v1"), "Bearer",
                           scope="repository:public/app:pull")
    assert got["error"] == "insufficient_scope"

    # bob may pull alice/* but not push or delete.
    bob_auth = rh.basic_header("bob", "hunter2")
    r = get_token(reg, "repository:alice/app:pull,push,delete",
                  authorization=bob_auth)
    assert claims_of(r.json()["token"])[1]["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull"]}]
    bob = reg.auth_client("Bearer " + r.json()["token"])
    r = bob.get_manifest("alice/app", "v1")
    assert r.status == 200 and r.body == m.data, r
    expect_challenge(bob.post("/v2/alice/app/blobs/uploads/"), "Bearer",
                     scope="repository:alice/app:pull,push",
                     error="insufficient_scope")
    expect_challenge(bob.delete("/v2/alice/app/manifests/v1"), "Bearer",
                     scope="repository:alice/app:delete")

    # public/*: anyone pulls, anonymous too; nobody pushes.
    rh.push_manifest(bearer(reg, "repository:alice/app:push"), "alice/app",
                     rh.build_image(), ref="v2")
    r = get_token(reg, "repository:public/app:pull,push")
    anon_claims = claims_of(r.json()["token"])[1]
    assert anon_claims["sub"] == ""
    assert anon_claims["access"] == [
        {"type": "repository", "name": "public/app", "actions": ["pull"]}]
    r = get_token(reg, "repository:alice/app:pull")
    assert claims_of(r.json()["token"])[1]["access"] == []

    # The catalog needs registry:catalog:*.
    expect_challenge(alice.get("/v2/_catalog"), "Bearer",
                     scope="registry:catalog:*")
    cat = bearer(reg, "registry:catalog:*")
    r = cat.get("/v2/_catalog")
    assert r.status == 200 and r.json()["repositories"] == ["alice/app"], r
    bob_cat = bearer(reg, "registry:catalog:*", authorization=bob_auth)
    expect_challenge(bob_cat.get("/v2/_catalog"), "Bearer")

    # The delete went through with alice's token.
    assert alice.delete("/v2/alice/app/manifests/v1").status == 202


def test_token_forged_and_expired(secrets):
    reg = rh.start_auth_registry(token_config(secrets, expiration=1))
    try:
        r = get_token(reg, "repository:alice/app:pull", authorization=ALICE)
        token = r.json()["token"]
        c = reg.auth_client("Bearer " + token)
        assert c.get("/v2/alice/app/tags/list").status == 404  # allowed
        h, p, s = token.split(".")
        # Claims changed (more rights) under the old signature.
        claims = claims_of(token)[1]
        claims["access"][0]["name"] = "bob/app"
        forged = base64.urlsafe_b64encode(
            json.dumps(claims).encode()).decode().rstrip("=")
        none_hdr = base64.urlsafe_b64encode(
            b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
        for bad in ("%s.%s.%s" % (h, forged, s), "%s.%s." % (none_hdr, p),
                    "%s.%s" % (h, p), "garbage"):
            got = expect_challenge(
                reg.auth_client("Bearer " + bad).get("/v2/"), "Bearer")
            assert got["error"] == "invalid_token"
        time.sleep(2.1)
        got = expect_challenge(c.get("/v2/alice/app/tags/list"), "Bearer",
                               scope="repository:alice/app:pull")
        assert got["error"] == "invalid_token"
        reg.check_healthy()
    finally:
        reg.stop()


def test_token_from_other_key_refused(token_registry, secrets, tmp_dir):
    # A registry with another key issues a token valid in every other way.
    key = os.path.join(tmp_dir, "other.pem")
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1",
                    "-noout", "-out", key], check=True)
    cfg = token_config(secrets)
    cfg["auth"]["token"]["key"] = key
    other = rh.start_auth_registry(cfg)
    try:
        r = get_token(other, "repository:alice/app:pull", authorization=ALICE)
        c = token_registry.auth_client("Bearer " + r.json()["token"])
        got = expect_challenge(c.get("/v2/"), "Bearer")
        assert got["error"] == "invalid_token"
    finally:
        other.stop()


def test_token_rsa_key(secrets, tmp_dir):
    key = os.path.join(tmp_dir, "rsa.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True,
                   stderr=subprocess.DEVNULL)
    cfg = token_config(secrets)
    cfg["auth"]["token"]["key"] = key
    reg = rh.start_auth_registry(cfg)
    try:
        r = get_token(reg, "repository:alice/app:pull,push",
                      authorization=ALICE)
        assert claims_of(r.json()["token"])[0]["alg"] == "RS256"
        c = reg.auth_client("Bearer " + r.json()["token"])
        rh.push_manifest(c, "alice/app", rh.build_image(), ref="v1")
    finally:
        reg.stop()


# --------------------------------------------------------------------------
# Admins: POST /admin/gc

BOB = rh.basic_header("bob", "hunter2")
ADMIN_SCOPE = "registry:admin:*"


def with_admins(cfg, admins=("alice",)):
    """CFG with auth.admins and a GC that collects at once."""
    cfg["auth"]["admins"] = list(admins)
    cfg["gc"] = {"grace_seconds": 0}
    return cfg


def orphan_blob(client, repo):
    """Pushes a blob no manifest references: the next collection takes
    it."""
    data = rh.random_bytes(1000)
    rh.push_blob(client, repo, data)
    return rh.digest_of(data)


def expect_gc_ran(reg, client, authorization):
    digest = orphan_blob(client, "alice/gc")
    stats = rh.run_gc(reg.auth_client(authorization))
    assert stats["blobs_deleted"] >= 1, stats
    assert client.get_blob("alice/gc", digest).status == 404


def test_admin_gc_basic(secrets):
    reg = rh.start_auth_registry(with_admins(htpasswd_config(secrets)))
    try:
        alice = reg.auth_client(ALICE)
        expect_gc_ran(reg, alice, ALICE)
        # A valid user who is not an admin: 403 DENIED, nothing collected.
        digest = orphan_blob(alice, "alice/gc")
        rh.expect_error(reg.auth_client(BOB).post("/admin/gc"), 403,
                        "DENIED")
        assert alice.get_blob("alice/gc", digest).status == 200
        # No, wrong or other credentials: 401 with the Basic challenge.
        for bad in (None, rh.basic_header("alice", "wrong"),
                    rh.basic_header("nobody", "secret"), "Bearer abc"):
            expect_challenge(reg.auth_client(bad).post("/admin/gc"), "Basic",
                             realm="berth test")
        assert alice.get_blob("alice/gc", digest).status == 200
        reg.check_healthy()
    finally:
        reg.stop()


def test_admin_gc_token(secrets):
    reg = rh.start_auth_registry(with_admins(token_config(secrets)))
    try:
        alice = bearer(reg, "repository:alice/gc:pull,push")
        # Basic credentials of an admin work in token mode too.
        expect_gc_ran(reg, alice, ALICE)
        # The token service grants registry:admin:* to admins only.
        r = get_token(reg, ADMIN_SCOPE, authorization=ALICE)
        assert claims_of(r.json()["token"])[1]["access"] == [
            {"type": "registry", "name": "admin", "actions": ["*"]}]
        expect_gc_ran(reg, alice, "Bearer " + r.json()["token"])
        r = get_token(reg, ADMIN_SCOPE, authorization=BOB)
        assert claims_of(r.json()["token"])[1]["access"] == []
        bob_token = "Bearer " + r.json()["token"]
        assert claims_of(get_token(reg, ADMIN_SCOPE).json()["token"])[1][
            "access"] == []

        digest = orphan_blob(alice, "alice/gc")
        # Valid tokens without the admin scope, and a non-admin's Basic
        # credentials: 403 DENIED.
        for other in (bob_token, alice.authorization, BOB):
            r = reg.auth_client(other).post("/admin/gc")
            rh.expect_error(r, 403, "DENIED")
        # No credentials: the Bearer challenge for the admin scope; a bad
        # token: invalid_token; wrong Basic credentials: a Basic challenge.
        realm = "http://%s/token" % reg.host
        got = expect_challenge(reg.auth_client().post("/admin/gc"), "Bearer",
                               realm=realm, service=SERVICE,
                               scope=ADMIN_SCOPE)
        assert "error" not in got
        got = expect_challenge(
            reg.auth_client("Bearer " + alice.authorization.split()[1] + "x")
            .post("/admin/gc"), "Bearer", scope=ADMIN_SCOPE)
        assert got["error"] == "invalid_token"
        expect_challenge(reg.auth_client(rh.basic_header("alice", "nope"))
                         .post("/admin/gc"), "Basic")
        assert alice.get_blob("alice/gc", digest).status == 200
        reg.check_healthy()
    finally:
        reg.stop()


def start_fails(config, tmp_dir):
    """Runs the registry with CONFIG, which must make it exit at once;
    returns its stderr."""
    path = os.path.join(tmp_dir, "config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    root = os.path.join(tmp_dir, "root")
    p = subprocess.run([rh.registry_binary(), "--listen", "127.0.0.1:0",
                        "--root", root, "--config", path],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0, p
    assert "listening" not in p.stderr, p.stderr
    return p.stderr


@pytest.mark.parametrize("mode", ["htpasswd", "token"])
def test_admin_config_refused(secrets, tmp_dir, mode):
    def config(admins):
        make = htpasswd_config if mode == "htpasswd" else token_config
        cfg = make(secrets)
        cfg["auth"]["admins"] = admins
        return cfg

    err = start_fails(config(["alice", "carol"]), tmp_dir)
    assert "auth.admins" in err and "`carol` is not a user" in err, err
    for bad in ("alice", {"alice": True}, 1, ["alice", 2]):
        err = start_fails(config(bad), tmp_dir)
        assert "auth.admins: expected an array" in err, (bad, err)
    if mode == "token":
        cfg = config(["alice"])
        del cfg["auth"]["token"]["users"]
        err = start_fails(cfg, tmp_dir)
        assert "auth.admins" in err and "auth.token.users" in err, err
    else:
        err = start_fails({"auth": {"admins": ["alice"]}}, tmp_dir)
        assert "auth.admins: needs auth.htpasswd or auth.token" in err, err


# --------------------------------------------------------------------------
# The gallery behind auth: Basic logins in both modes, filtered by the ACL

def gallery_token_config(secrets, anonymous_pull=False):
    cfg = token_config(secrets, anonymous_pull=anonymous_pull)
    # alice may push secret/* without pulling it: no gallery page for her.
    cfg["auth"]["token"]["acl"] += [
        {"account": "alice", "name": "public/*", "actions": ["push"]},
        {"account": "alice", "name": "secret/*", "actions": ["push"]},
        {"account": "bob", "name": "bob/*", "actions": ["pull", "push"]}]
    return cfg


GALLERY_REPOS = ("alice/app", "public/app", "secret/app", "bob/app")


def push_gallery_repos(reg):
    for repo in GALLERY_REPOS:
        c = bearer(reg, "repository:%s:pull,push" % repo,
                   authorization=BOB if repo.startswith("bob/") else ALICE)
        rh.push_manifest(c, repo, rh.build_image(), ref="v1")


def gallery_page(client, path, status=200):
    r = client.get(path)
    assert r.status == status, r
    assert r.header("Content-Type", "").startswith("text/html"), r
    return r.body.decode()


def listed(body):
    return {repo for repo in GALLERY_REPOS if "/r/%s\"" % repo in body}


def test_gallery_token_mode_basic_login(secrets):
    reg = rh.start_auth_registry(gallery_token_config(secrets))
    try:
        push_gallery_repos(reg)
        # Anonymous, wrong credentials, a Bearer token (browsers have
        # none): 401 with the Basic challenge, no repository named.
        token = bearer(reg, "repository:alice/app:pull").authorization
        for bad in (None, rh.basic_header("alice", "wrong"),
                    rh.basic_header("nobody", "secret"), token):
            c = reg.auth_client(bad)
            for path in ("/", "/?q=app", "/r/alice/app",
                         "/r/alice/app/t/v1", "/r/public/app"):
                r = c.get(path)
                assert r.status == 401, (bad, r)
                scheme, params = rh.parse_challenge(
                    r.header("WWW-Authenticate", ""))
                assert scheme == "Basic" and params == {
                    "realm": "berth-registry"}, r
                assert listed(r.body.decode()) == set(), r

        # Each user sees what the ACL lets them pull, and nothing else.
        for who, auth, may in (
                ("alice", ALICE, {"alice/app", "public/app"}),
                ("bob", BOB, {"alice/app", "public/app", "bob/app"})):
            c = reg.auth_client(auth)
            assert listed(gallery_page(c, "/")) == may, who
            assert listed(gallery_page(c, "/?q=app")) == may, who
            for repo in GALLERY_REPOS:
                if repo in may:
                    assert "v1" in gallery_page(c, "/r/" + repo), (who, repo)
                    gallery_page(c, "/r/%s/t/v1" % repo)
                else:
                    gallery_page(c, "/r/" + repo, 404)
                    gallery_page(c, "/r/%s/t/v1" % repo, 404)
        reg.check_healthy()
    finally:
        reg.stop()


def test_gallery_token_mode_anonymous_pull(secrets):
    reg = rh.start_auth_registry(gallery_token_config(secrets, True))
    try:
        push_gallery_repos(reg)
        anon = reg.auth_client()
        assert listed(gallery_page(anon, "/")) == set(GALLERY_REPOS)
        gallery_page(anon, "/r/secret/app/t/v1")
        # Credentials that are sent must be right.
        bad = reg.auth_client(rh.basic_header("alice", "wrong"))
        assert bad.get("/").status == 401
        reg.check_healthy()
    finally:
        reg.stop()


def test_gallery_htpasswd_mode(basic_registry):
    alice = basic_registry.auth_client(ALICE)
    rh.push_manifest(alice, "alice/app", rh.build_image(), ref="v1")
    assert "alice/app" in gallery_page(alice, "/")
    gallery_page(alice, "/r/alice/app/t/v1")
    for bad in (None, rh.basic_header("alice", "wrong")):
        r = basic_registry.auth_client(bad).get("/r/alice/app")
        assert r.status == 401, r
        assert rh.parse_challenge(r.header("WWW-Authenticate", "")) == (
            "Basic", {"realm": "berth test"}), r


# --------------------------------------------------------------------------
# Real clients

@pytest.fixture
def skopeo(tmp_dir):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    top = os.path.join(tmp_dir, "skopeo")
    os.mkdir(top)
    return Skopeo(top)


def skopeo_round_trip(skopeo, reg, repo, image, tmp_dir, creds):
    src = "oci:%s:latest" % os.path.join(image, "oci")
    ref = "docker://%s/%s:v1" % (reg.host, repo)
    skopeo.copy(src, ref, "--dest-creds", creds)
    out = os.path.join(tmp_dir, "back-" + repo.replace("/", "-"))
    skopeo.copy(ref, "oci:%s:v1" % out, "--src-creds", creds)
    with open(os.path.join(out, "index.json")) as f:
        back = json.load(f)["manifests"][0]["digest"]
    with open(os.path.join(image, "oci", "index.json")) as f:
        assert json.load(f)["manifests"][0]["digest"] == back
    return ref


def test_skopeo_basic_auth(skopeo, basic_registry, image, tmp_dir):
    ref = skopeo_round_trip(skopeo, basic_registry, "alice/busybox", image,
                            tmp_dir, "alice:secret")
    p = skopeo("inspect", "--tls-verify=false", "--creds", "alice:wrong",
               ref, check=False)
    assert p.returncode != 0
    p = skopeo("copy", "--dest-tls-verify=false", "--dest-creds",
               "alice:wrong", "oci:%s:latest" % os.path.join(image, "oci"),
               ref, check=False)
    assert p.returncode != 0


def test_skopeo_token_auth(skopeo, token_registry, image, tmp_dir):
    skopeo_round_trip(skopeo, token_registry, "alice/busybox", image,
                      tmp_dir, "alice:secret")
    # bob may pull alice/* but not push anywhere.
    p = skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
               "--dest-creds", "bob:hunter2",
               "oci:%s:latest" % os.path.join(image, "oci"),
               "docker://%s/alice/bob:v1" % token_registry.host, check=False)
    assert p.returncode != 0
    out = os.path.join(tmp_dir, "bob")
    skopeo.copy("docker://%s/alice/busybox:v1" % token_registry.host,
                "oci:%s:v1" % out, "--src-creds", "bob:hunter2")


def test_podman_login_push_pull(token_registry, image, tmp_dir):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    top = os.path.join(tmp_dir, "podman")
    os.mkdir(top)
    podman = Podman(top)
    try:
        host = token_registry.host
        p = podman("login", "--tls-verify=false", host, "-u", "alice", "-p",
                   "wrong", check=False)
        assert p.returncode != 0
        podman("login", "--tls-verify=false", host, "-u", "alice",
               "-p", "secret")
        with open(podman.env["REGISTRY_AUTH_FILE"]) as f:
            assert host in json.load(f)["auths"]
        oci = "oci:%s:latest" % os.path.join(image, "oci")
        local = podman("pull", "-q", "--signature-policy", podman.policy,
                       oci).stdout.split()[-1]
        ref = "%s/alice/pm:v1" % host
        podman("push", "--tls-verify=false", "--signature-policy",
               podman.policy, local, "docker://" + ref)
        podman("rmi", "-a", "-f")
        podman("pull", "-q", "--tls-verify=false", "--signature-policy",
               podman.policy, ref)
        assert podman.image_id(ref) == local
        podman("logout", host)
        p = podman("pull", "-q", "--tls-verify=false", "--signature-policy",
                   podman.policy, ref, check=False)
        assert p.returncode != 0
    finally:
        podman.reset()
