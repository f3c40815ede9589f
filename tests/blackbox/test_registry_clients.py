"""Real clients against the registry: skopeo and podman push, pull, copy
and inspect through it, as users do.

The test image is the busybox OCI layout the session fixture `image` makes
(IMAGE_DIR/oci, ref "latest").  skopeo runs with a private signature
policy, registries.conf and auth file; podman with everything private to a
temporary directory (--root, --runroot, --tmpdir, storage.conf with the vfs
driver, containers.conf, registries.conf, the network config dir), as in
test_podman.py.  Both talk plain HTTP (--tls-verify=false).

containers/image keeps a blob-info cache in /var/lib/containers/cache when
run as root and no option moves it: the module removes what it created.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

# registry_helpers is also this module's plugin (its fixtures): its asserts
# are rewritten (explained) when registered before the first import.
pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402

# The fixtures: registry_server (one per module), registry, client,
# fresh_registry.
pytest_plugins = ["registry_helpers"]

BLOB_CACHE = "/var/lib/containers/cache/blob-info-cache-v1.boltdb"
TIMEOUT = 180


@pytest.fixture(scope="module", autouse=True)
def containers_cache():
    made = [d for d in (BLOB_CACHE, os.path.dirname(BLOB_CACHE),
                        os.path.dirname(os.path.dirname(BLOB_CACHE)))
            if not os.path.exists(d)]
    yield
    for path in made:  # deepest first
        try:
            if path == BLOB_CACHE:
                os.unlink(path)
            elif path == os.path.dirname(BLOB_CACHE):
                shutil.rmtree(path)
            else:
                os.rmdir(path)
        except OSError:
            pass


@pytest.fixture
def tmp_dir():
    d = tempfile.mkdtemp(prefix="berth-regcl-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Skopeo:
    def __init__(self, top):
        self.top = top
        self.policy = os.path.join(top, "policy.json")
        with open(self.policy, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        regconf = os.path.join(top, "registries.conf")
        open(regconf, "w").close()
        self.authfile = os.path.join(top, "auth.json")
        with open(self.authfile, "w") as f:
            f.write('{"auths": {}}')
        self.env = dict(os.environ)
        self.env.update({"CONTAINERS_REGISTRIES_CONF": regconf,
                         "REGISTRY_AUTH_FILE": self.authfile})

    def __call__(self, *args, check=True):
        argv = ["skopeo", "--policy", self.policy] + [str(a) for a in args]
        p = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=TIMEOUT)
        if check and p.returncode != 0:
            raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" % (
                " ".join(argv), p.returncode, p.stdout, p.stderr))
        return p

    def copy(self, src, dst, *opts):
        return self("copy", "--src-tls-verify=false",
                    "--dest-tls-verify=false", *opts, src, dst)

    def inspect(self, ref, raw=False):
        p = self("inspect", "--tls-verify=false", *(["--raw"] if raw else []),
                 ref)
        return p.stdout if raw else json.loads(p.stdout)


@pytest.fixture(scope="module")
def skopeo_tool():
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    top = tempfile.mkdtemp(prefix="berth-skopeo-", dir="/tmp")
    try:
        yield Skopeo(top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def skopeo(skopeo_tool, registry):
    return skopeo_tool


# --------------------------------------------------------------------------
# OCI layouts

def read_layout(path):
    """index.json of an OCI layout and a reader of its blobs."""
    with open(os.path.join(path, "index.json")) as f:
        index = json.load(f)

    def blob(digest):
        alg, hexd = digest.split(":", 1)
        with open(os.path.join(path, "blobs", alg, hexd), "rb") as f:
            return f.read()
    return index, blob


def layout_ref(index, ref):
    for d in index["manifests"]:
        if d.get("annotations", {}).get(
                "org.opencontainers.image.ref.name") == ref:
            return d
    raise AssertionError("no %s in %s" % (ref, index))


def write_layout(path, manifest, ref):
    """Writes MANIFEST (with its children and blobs) as an OCI layout."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def put(digest, data):
        with open(os.path.join(path, "blobs", "sha256",
                               digest.split(":", 1)[1]), "wb") as f:
            f.write(data)

    def walk(m):
        for c in m.children:
            walk(c)
        for b in m.blobs:
            put(b.digest, b.data)
        put(m.digest, m.data)
    walk(manifest)
    desc = manifest.descriptor(annotations={
        "org.opencontainers.image.ref.name": ref})
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [desc]}, f)


def multi_arch_index():
    return rh.build_index([
        rh.build_image(arch="amd64", layers=2, real_layers=True),
        rh.build_image(arch="arm64", layers=1, real_layers=True)])


# --------------------------------------------------------------------------
# skopeo

def test_skopeo_copy_inspect_and_back(skopeo, registry, client, image,
                                      tmp_dir):
    src = os.path.join(image, "oci")
    index, blob = read_layout(src)
    want = layout_ref(index, "latest")
    manifest = blob(want["digest"])
    ref = "docker://%s/test/busybox:latest" % registry.host

    skopeo.copy("oci:%s:latest" % src, ref)

    # What the registry holds is the layout's manifest, byte for byte.
    r = client.get_manifest("test/busybox", "latest")
    assert r.status == 200, r
    assert r.body == manifest
    assert r.header("Docker-Content-Digest") == want["digest"]
    m = json.loads(manifest)
    for d in [m["config"]] + m["layers"]:
        r = client.get_blob("test/busybox", d["digest"], method="HEAD")
        assert r.status == 200 and int(r.header("Content-Length")) == \
            d["size"], r

    info = skopeo.inspect(ref)
    assert info["Digest"] == want["digest"]
    assert info["RepoTags"] == ["latest"]
    assert info["Layers"] == [d["digest"] for d in m["layers"]]
    assert skopeo.inspect(ref, raw=True).encode() == manifest

    out = os.path.join(tmp_dir, "back")
    skopeo.copy(ref, "oci:%s:again" % out)
    index2, blob2 = read_layout(out)
    got = layout_ref(index2, "again")
    assert got["digest"] == want["digest"]
    assert blob2(got["digest"]) == manifest
    for d in [m["config"]] + m["layers"]:
        assert blob2(d["digest"]) == blob(d["digest"])


def test_skopeo_copy_between_repositories(skopeo, registry, client, image):
    src = "docker://%s/copy/src:v1" % registry.host
    dst = "docker://%s/copy/dst:v2" % registry.host
    skopeo.copy("oci:%s:latest" % os.path.join(image, "oci"), src)
    skopeo.copy(src, dst)
    a = client.get_manifest("copy/src", "v1")
    b = client.get_manifest("copy/dst", "v2")
    assert a.status == 200 and b.status == 200, (a, b)
    assert a.body == b.body
    assert skopeo.inspect(dst)["Digest"] == rh.digest_of(a.body)
    for d in [json.loads(b.body)["config"]] + json.loads(b.body)["layers"]:
        x = client.get_blob("copy/dst", d["digest"])
        assert x.status == 200 and rh.digest_of(x.body) == d["digest"], x
    p = skopeo("list-tags", "--tls-verify=false",
               "docker://%s/copy/dst" % registry.host)
    assert json.loads(p.stdout)["Tags"] == ["v2"]


def test_skopeo_copy_as_docker_schema2(skopeo, registry, client, image):
    """skopeo converts the OCI image to a Docker schema 2 manifest on the
    way: the registry serves it with that media type."""
    ref = "docker://%s/conv/busybox:v2s2" % registry.host
    skopeo.copy("oci:%s:latest" % os.path.join(image, "oci"), ref,
                "--format", "v2s2")
    r = client.get_manifest("conv/busybox", "v2s2")
    assert r.status == 200, r
    assert r.header("Content-Type") == rh.DOCKER_MANIFEST, r
    assert r.json()["mediaType"] == rh.DOCKER_MANIFEST
    info = skopeo.inspect(ref)
    assert info["Digest"] == rh.digest_of(r.body)


def test_skopeo_copy_all_index(skopeo, registry, client, tmp_dir):
    """A multi-arch OCI index, pushed from a layout with copy --all, copied
    to another repository and back to a layout: byte for byte each time."""
    idx = multi_arch_index()
    layout = os.path.join(tmp_dir, "multi")
    write_layout(layout, idx, "v1")
    src = "docker://%s/multi/arch:v1" % registry.host
    dst = "docker://%s/multi/copy:v1" % registry.host

    skopeo.copy("oci:%s:v1" % layout, src, "--all")
    r = client.get_manifest("multi/arch", "v1")
    assert r.status == 200 and r.body == idx.data, r
    assert r.header("Content-Type") == rh.OCI_INDEX
    for c in idx.children:
        r = client.get_manifest("multi/arch", c.digest)
        assert r.status == 200 and r.body == c.data, r
        for b in c.blobs:
            r = client.get_blob("multi/arch", b.digest)
            assert r.status == 200 and r.body == b.data, r

    skopeo.copy(src, dst, "--all")
    assert skopeo.inspect(dst, raw=True).encode() == idx.data
    for c in idx.children:
        r = client.get_manifest("multi/copy", c.digest)
        assert r.status == 200 and r.body == c.data, r

    out = os.path.join(tmp_dir, "out")
    skopeo.copy(dst, "oci:%s:v1" % out, "--all")
    index, blob = read_layout(out)
    assert layout_ref(index, "v1")["digest"] == idx.digest
    assert blob(idx.digest) == idx.data
    for c in idx.children:
        assert blob(c.digest) == c.data

    # Without --all, the platform asked for.
    one = os.path.join(tmp_dir, "one")
    skopeo.copy(src, "oci:%s:arm" % one, "--override-arch", "arm64")
    index, blob = read_layout(one)
    assert layout_ref(index, "arm")["digest"] == idx.children[1].digest


def test_skopeo_delete(skopeo, registry, client, image):
    ref = "docker://%s/del/busybox:gone" % registry.host
    skopeo.copy("oci:%s:latest" % os.path.join(image, "oci"), ref)
    digest = skopeo.inspect(ref)["Digest"]
    skopeo("delete", "--tls-verify=false", ref)
    r = client.get_manifest("del/busybox", digest)
    assert r.status == 404, r
    assert client.get_manifest("del/busybox", "gone").status == 404
    p = skopeo("inspect", "--tls-verify=false", ref, check=False)
    assert p.returncode != 0


# --------------------------------------------------------------------------
# podman

class Podman:
    def __init__(self, top):
        self.top = top
        for d in ("tmp", "cni"):
            os.makedirs(os.path.join(top, d))
        self.policy = self._write("policy.json", json.dumps(
            {"default": [{"type": "insecureAcceptAnything"}]}))
        self._write("registries.conf", "")
        self._write("auth.json", '{"auths": {}}')
        self._write("storage.conf", """[storage]
driver = "vfs"
runroot = "{top}/runroot"
graphroot = "{top}/root"
""".format(top=top))
        self._write("containers.conf", """[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = "{top}/tmp"

[network]
network_config_dir = "{top}/cni"
""".format(top=top))
        self.env = dict(os.environ)
        self.env.update({
            "CONTAINERS_CONF": os.path.join(top, "containers.conf"),
            "CONTAINERS_STORAGE_CONF": os.path.join(top, "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": os.path.join(top,
                                                       "registries.conf"),
            "REGISTRY_AUTH_FILE": os.path.join(top, "auth.json"),
        })

    def _write(self, name, text):
        path = os.path.join(self.top, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def __call__(self, *args, check=True):
        argv = ["podman", "--root", os.path.join(self.top, "root"),
                "--runroot", os.path.join(self.top, "runroot"),
                "--tmpdir", os.path.join(self.top, "tmp"),
                "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs",
                "--events-backend", "file",
                "--network-config-dir", os.path.join(self.top, "cni")] + \
            [str(a) for a in args]
        p = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=TIMEOUT)
        if check and p.returncode != 0:
            raise AssertionError("podman %s exited %d\nstdout: %s\n"
                                 "stderr: %s" % (" ".join(args), p.returncode,
                                                 p.stdout, p.stderr))
        return p

    def image_id(self, ref):
        return self("image", "inspect", "--format", "{{.Id}}",
                    ref).stdout.strip()

    def reset(self):
        self("rmi", "-a", "-f", check=False)
        self("system", "reset", "-f", check=False)


@pytest.fixture(scope="module")
def podman_tool():
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    top = tempfile.mkdtemp(prefix="berth-regpm-", dir="/tmp")
    pm = Podman(top)
    try:
        yield pm
    finally:
        try:
            pm.reset()
        finally:
            shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def podman(podman_tool, registry):
    yield podman_tool
    podman_tool("rmi", "-a", "-f", check=False)


def test_podman_push_and_pull(podman, registry, client, image):
    oci = "oci:%s:latest" % os.path.join(image, "oci")
    p = podman("pull", "-q", "--signature-policy", podman.policy, oci)
    local = p.stdout.split()[-1]
    ref = "%s/pm/busybox:pushed" % registry.host
    podman("push", "--tls-verify=false", "--signature-policy",
           podman.policy, local, "docker://" + ref)

    # podman may recompress the layer: the config (the image ID) is what
    # must come through unchanged.
    r = client.get_manifest("pm/busybox", "pushed")
    assert r.status == 200, r
    m = r.json()
    assert m["config"]["digest"] == "sha256:" + local
    for d in [m["config"]] + m["layers"]:
        b = client.get_blob("pm/busybox", d["digest"])
        assert b.status == 200 and rh.digest_of(b.body) == d["digest"], b
        assert len(b.body) == d["size"]

    podman("rmi", "-a", "-f")
    podman("pull", "-q", "--tls-verify=false", "--signature-policy",
           podman.policy, ref)
    assert podman.image_id(ref) == local
    # A push of a tag that already exists, with every blob there.
    podman("tag", ref, "%s/pm/busybox:again" % registry.host)
    podman("push", "--tls-verify=false", "--signature-policy",
           podman.policy, "%s/pm/busybox:again" % registry.host)
    again = client.get_manifest("pm/busybox", "again")
    assert again.status == 200 and again.json()["config"] == m["config"]
    assert sorted(client.tags("pm/busybox").json()["tags"]) == \
        ["again", "pushed"]


def test_podman_pull_pushed_by_skopeo(podman, skopeo, registry, image):
    ref = "%s/pm/from-skopeo:v1" % registry.host
    skopeo.copy("oci:%s:latest" % os.path.join(image, "oci"),
                "docker://" + ref)
    podman("pull", "-q", "--tls-verify=false", "--signature-policy",
           podman.policy, ref)
    with open(os.path.join(image, "oci", "index.json")) as f:
        mdigest = json.load(f)["manifests"][0]["digest"]
    _, blob = read_layout(os.path.join(image, "oci"))
    config = json.loads(blob(mdigest))["config"]["digest"]
    assert "sha256:" + podman.image_id(ref) == config
    digest = podman("image", "inspect", "--format", "{{.Digest}}",
                    ref).stdout.strip()
    assert digest == mdigest
