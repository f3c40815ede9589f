"""berth-registry's web gallery: the HTML pages outside /v2/ (/, /?q=,
/r/<name>, /r/<name>/t/<tag>), their content and escaping, the 404s, the
auth rules (public only with anonymous_pull when auth is configured), and
a headless Chromium rendering when /usr/bin/chromium is present."""

import html
import os
import shutil
import subprocess
import tempfile

import pytest

pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402

pytest_plugins = ["registry_helpers"]

if rh.IS_DOCKER_REGISTRY:
    pytest.skip("the gallery is berth-registry's", allow_module_level=True)

NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
EVIL = "<script>alert('x')</script>"
WIN_VERSION = "10.0.17763.5458"


def page(client, path, status=200):
    r = client.get(path)
    assert r.status == status, r
    assert r.header("Content-Type", "").startswith("text/html"), r
    return r.body.decode()


def labelled_image(labels, **kw):
    cfg_extra = {"config": {"Cmd": ["/bin/sh"], "Labels": labels}}
    return rh.build_image(config_extra=cfg_extra, **kw)


def test_repository_list_and_search(client):
    repo = rh.new_repo("gallery")
    other = rh.new_repo("galleryother")
    rh.push_manifest(client, repo, rh.build_image(), "v1")
    rh.push_manifest(client, other, rh.build_image(), "v1")
    body = page(client, "/")
    assert "<meta name=\"viewport\"" in body
    assert 'href="/r/%s"' % repo in body and 'href="/r/%s"' % other in body
    assert 'name="q"' in body
    body = page(client, rh.with_query("/", q=repo.split("/")[1]))
    assert 'href="/r/%s"' % repo in body
    assert other not in body
    body = page(client, rh.with_query("/", q="no-such-thing-zz"))
    assert repo not in body and "No repositories" in body
    # The query is reflected escaped in the search box.
    body = page(client, rh.with_query("/", q=EVIL))
    assert EVIL not in body and "<script" not in body
    assert html.escape(EVIL, quote=True).replace("&#x27;", "&#39;") in body


def test_tags_page(client):
    repo = rh.new_repo("gallery")
    img = rh.build_image()
    rh.push_manifest(client, repo, img, "v1")
    rh.push_manifest(client, repo, img, "latest", push_content=False)
    body = page(client, "/r/%s" % repo)
    assert 'href="/r/%s/t/v1"' % repo in body
    assert 'href="/r/%s/t/latest"' % repo in body


def test_image_page(registry, client):
    repo = rh.new_repo("gallery")
    foreign = {"mediaType": NONDIST_LAYER, "digest": rh.digest_of(b"foreign"),
               "size": 12345, "urls": ["https://example.com/layer"]}
    img = labelled_image({"org.example.title": "demo-title", "evil": EVIL},
                         layers=2, layer_size=1000, extra_layers=[foreign])
    rh.push_manifest(client, repo, img, "v1")
    body = page(client, "/r/%s/t/v1" % repo)
    assert "docker pull %s/%s:v1" % (registry.host, repo) in body
    assert "(14345 bytes)" in body          # 1000 + 1000 + 12345
    assert "linux/amd64" in body
    assert "2024-01-02T03:04:05Z" in body
    assert "demo-title" in body and "org.example.title" in body
    assert "<script" not in body
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body
    assert "foreign" in body
    for layer in img.obj["layers"]:
        assert layer["digest"][:len("sha256:") + 12] in body
    assert img.digest in body


def test_index_page(registry, client):
    repo = rh.new_repo("gallery")
    children = [rh.build_image(arch="amd64"),
                rh.build_image(arch="arm64", layers=3, layer_size=700),
                rh.build_image(arch="amd64", os_name="windows")]
    platforms = [{"os": "linux", "architecture": "amd64"},
                 {"os": "linux", "architecture": "arm64", "variant": "v8"},
                 {"os": "windows", "architecture": "amd64",
                  "os.version": WIN_VERSION}]
    idx = rh.build_index(children, platforms=platforms)
    rh.push_manifest(client, repo, idx, "multi")
    body = page(client, "/r/%s/t/multi" % repo)
    assert body.count('class="platform-section"') == 3
    assert "linux/amd64" in body
    assert "linux/arm64/v8" in body
    assert "Windows/amd64" in body
    assert "Windows version %s" % WIN_VERSION in body
    assert "(2100 bytes)" in body           # 3 x 700
    assert "docker pull %s/%s:multi" % (registry.host, repo) in body
    # Docker manifest list too.
    dl = rh.build_index([rh.build_image(docker=True)], docker=True)
    rh.push_manifest(client, repo, dl, "dlist")
    body = page(client, "/r/%s/t/dlist" % repo)
    assert body.count('class="platform-section"') == 1


def test_pull_command_uses_host_header(client):
    repo = rh.new_repo("gallery")
    rh.push_manifest(client, repo, rh.build_image(), "v1")
    r = client.get("/r/%s/t/v1" % repo,
                   headers={"Host": "registry.example:5000"})
    assert r.status == 200
    assert ("docker pull registry.example:5000/%s:v1" % repo) in \
        r.body.decode()


def test_not_found_and_methods(client):
    repo = rh.new_repo("gallery")
    rh.push_manifest(client, repo, rh.build_image(), "v1")
    for path in ("/nothing", "/r/gallery/nosuchrepo",
                 "/r/%s/t/nosuchtag" % repo, "/r/gallery/x/t/v1",
                 "/r/UPPER/case", "/r/%s/t/%%3Cscript%%3E" % repo):
        body = page(client, path, 404)
        assert "Not found" in body and "<script" not in body
    r = client.post("/")
    assert r.status == 405, r
    # The API is untouched.
    assert client.get("/v2/").status == 200


def _auth_secrets():
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is not installed")
    top = tempfile.mkdtemp(prefix="berth-gallery-", dir="/tmp")
    ht = os.path.join(top, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", ht, "alice", "secret"], check=True,
                   capture_output=True)
    return top, ht


@pytest.mark.parametrize("anonymous_pull", [False, True])
def test_gallery_auth(anonymous_pull):
    top, ht = _auth_secrets()
    cfg = {"log_level": "warn",
           "auth": {"anonymous_pull": anonymous_pull,
                    "htpasswd": {"realm": "berth test", "path": ht}}}
    reg = rh.start_auth_registry(cfg)
    try:
        alice = reg.auth_client(rh.basic_header("alice", "secret"))
        anon = reg.auth_client()
        repo = rh.new_repo("gallery")
        rh.push_manifest(alice, repo, rh.build_image(), "v1")
        for path in ("/", "/r/%s" % repo, "/r/%s/t/v1" % repo):
            assert alice.get(path).status == 200, path
            r = anon.get(path)
            if anonymous_pull:
                assert r.status == 200, r
            else:
                assert r.status == 401, r
                assert r.header("WWW-Authenticate", "").startswith("Basic")
                assert repo not in r.body.decode()
        bad = reg.auth_client(rh.basic_header("alice", "wrong"))
        if not anonymous_pull:
            assert bad.get("/").status == 401
        reg.check_healthy()
    finally:
        reg.stop()
        shutil.rmtree(top, ignore_errors=True)


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason="%s is not installed" % CHROMIUM)
def test_chromium_screenshot(registry, client):
    repo = rh.new_repo("gallery")
    rh.push_manifest(client, repo, labelled_image({"a": "b"}), "v1")
    art = os.path.join(rh.BUILD, "test-artifacts")
    os.makedirs(art, exist_ok=True)
    png = os.path.join(art, "gallery.png")
    if os.path.exists(png):
        os.unlink(png)
    profile = tempfile.mkdtemp(prefix="berth-chromium-", dir="/tmp")
    try:
        url = "http://%s/r/%s/t/v1" % (registry.host, repo)
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=%s" % profile,
             "--screenshot=%s" % png, "--window-size=1280,900", url],
            check=True, capture_output=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert os.path.exists(png) and os.path.getsize(png) > 0
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
