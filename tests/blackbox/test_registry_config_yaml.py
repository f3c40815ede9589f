"""berth-registry's configuration file in YAML (src/libberth/yaml.c).

The registry is started with only `--config FILE`, so that listen and root
come from the file.  Each group of settings (listen, root, log level and
limits; htpasswd auth; gc; a proxy list written with an anchor and a merge
key) is written as YAML and as the equivalent JSON, and the same checks
run on both: what the settings do, not how they were parsed.  Files named
*.yaml and *.yml are YAML, *.json JSON, and any other is JSON when it
starts with `{`.  Bad YAML is refused at start, exit status 2, with
`FILE:LINE:COLUMN: what is wrong` on stderr.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402
from registry_helpers import IS_DOCKER_REGISTRY  # noqa: E402

pytest_plugins = ["registry_helpers"]

pytestmark = pytest.mark.skipif(IS_DOCKER_REGISTRY,
                                reason="berth-registry's config file")


class FileRegistry(rh.AuthRegistry):
    """A berth-registry started with `--config NAME` and no other flag.
    TEXT is the file's content; {port} and {root} in it are replaced at
    start.  Ready once GET /v2/ answers 200 or 401 (auth)."""

    def __init__(self, name, text):
        super().__init__(None)
        self.name = name
        self.text = text

    def argv(self):
        path = os.path.join(self.top, self.name)
        with open(path, "w") as f:
            f.write(self.text.replace("{port}", str(self.port))
                    .replace("{root}", self.root))
        return [self.binary, "--config", path]


@pytest.fixture
def start():
    """start(NAME, TEXT): a FileRegistry, stopped (and checked) after the
    test."""
    regs = []

    def run(name, text):
        reg = FileRegistry(name, text)
        regs.append(reg)
        return reg.start()

    try:
        yield run
        for reg in regs:
            reg.check_healthy()
    finally:
        for reg in regs:
            reg.stop()


@pytest.fixture(scope="module")
def htpasswd():
    top = tempfile.mkdtemp(prefix="berth-regyaml-", dir="/tmp")
    path = os.path.join(top, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", path, "alice", "secret"], check=True,
                   stderr=subprocess.DEVNULL)
    try:
        yield path
    finally:
        shutil.rmtree(top, ignore_errors=True)


def both_forms(yaml_text, settings):
    """The (NAME, TEXT) pairs of one configuration: YAML under .yaml, .yml
    and a name without extension; JSON under .json and without one."""
    text = json.dumps(settings, indent=2)
    return [("config.yaml", yaml_text), ("config.yml", yaml_text),
            ("registry.conf", yaml_text), ("config.json", text),
            ("registry.conf", "\n  " + text)]


def form_ids(forms):
    return ["%s-%s" % (name, "json" if text.lstrip().startswith("{")
                       else "yaml") for name, text in forms]


# --------------------------------------------------------------------------
# listen, root, log_level, limits

BASIC_YAML = """\
# berth-registry, YAML
listen: 127.0.0.1:{port}
root: {root}
log_level: warn
limits:
  max_manifest_bytes: 0x1000        # 4096, a core-schema hex integer
  max_header_bytes: !!int "65536"
uploads: {expire_seconds: 3600}
"""
BASIC = both_forms(BASIC_YAML, {
    "listen": "127.0.0.1:{port}", "root": "{root}", "log_level": "warn",
    "limits": {"max_manifest_bytes": 4096, "max_header_bytes": 65536},
    "uploads": {"expire_seconds": 3600}})


@pytest.mark.parametrize("name,text", BASIC, ids=form_ids(BASIC))
def test_listen_root_log_level_limits(start, name, text):
    reg = start(name, text)
    assert "berth-registry listening on %s" % reg.host in reg.log()
    c = reg.client()
    repo = rh.new_repo("yaml")
    small = rh.build_image()
    rh.push_manifest(c, repo, small, ref="v1")
    # root: the blobs are stored under it.
    for b in small.blobs:
        alg, hexa = b.digest.split(":")
        assert os.path.isfile(os.path.join(reg.root, "blobs", alg, hexa[:2],
                                           hexa)), b.digest
    # log_level warn: no line per request.
    assert "GET /v2/" not in reg.log(), reg.log()
    # limits.max_manifest_bytes: 4096.
    big = rh.build_image(annotations={"org.example.pad": "x" * 5000})
    for b in big.blobs:
        rh.push_blob(c, repo, b.data)
    rh.expect_error(rh.put_manifest(c, repo, "big", big.data,
                                    big.media_type), 413, "SIZE_INVALID")
    r = c.get_manifest(repo, "v1")
    assert r.status == 200 and r.body == small.data, r


# --------------------------------------------------------------------------
# auth

AUTH_YAML = """\
listen: "127.0.0.1:{port}"
root: '{root}'
log_level: warn
auth:
  anonymous_pull: true
  htpasswd:
    realm: berth yaml
    path: HTPASSWD
"""


def auth_forms(htpasswd):
    return both_forms(AUTH_YAML.replace("HTPASSWD", htpasswd), {
        "listen": "127.0.0.1:{port}", "root": "{root}", "log_level": "warn",
        "auth": {"anonymous_pull": True,
                 "htpasswd": {"realm": "berth yaml", "path": htpasswd}}})


@pytest.mark.parametrize("form", range(5), ids=form_ids(auth_forms("")))
def test_auth(start, htpasswd, form):
    reg = start(*auth_forms(htpasswd)[form])
    anon = reg.auth_client()
    r = anon.get("/v2/")
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == 'Basic realm="berth yaml"', r
    alice = reg.auth_client(rh.basic_header("alice", "secret"))
    assert alice.get("/v2/").status == 200
    m = rh.build_image()
    rh.push_manifest(alice, "alice/app", m, ref="v1")
    # anonymous_pull: a pull without credentials, but no push.
    r = anon.get_manifest("alice/app", "v1")
    assert r.status == 200 and r.body == m.data, r
    assert anon.post("/v2/alice/app/blobs/uploads/").status == 401
    wrong = reg.auth_client(rh.basic_header("alice", "wrong"))
    assert wrong.get_manifest("alice/app", "v1").status == 401


# --------------------------------------------------------------------------
# gc

GC_YAML = """\
listen: 127.0.0.1:{port}
root: {root}
log_level: error
gc:
  grace_seconds: 0
  delete_untagged: True
  interval_seconds: ~
"""
GC = both_forms(GC_YAML, {
    "listen": "127.0.0.1:{port}", "root": "{root}", "log_level": "error",
    "gc": {"grace_seconds": 0, "delete_untagged": True,
           "interval_seconds": None}})


@pytest.mark.parametrize("name,text", GC, ids=form_ids(GC))
def test_gc(start, name, text):
    reg = start(name, text)
    c = reg.client()
    repo = rh.new_repo("gc")
    orphan = rh.random_bytes(3000)
    rh.push_blob(c, repo, orphan)
    tagged = rh.build_image()
    rh.push_manifest(c, repo, tagged, ref="v1")
    untagged = rh.build_image()
    rh.push_manifest(c, repo, untagged)
    stats = rh.run_gc(c)
    # grace_seconds 0: the orphan goes at once; delete_untagged: so does
    # the manifest pushed by digest, and its blobs with it.
    assert stats["manifests_deleted"] == 1, stats
    assert rh.blob_status(c, repo, rh.digest_of(orphan)) == 404
    assert c.get_manifest(repo, untagged.digest).status == 404
    for b in untagged.blobs:
        assert rh.blob_status(c, repo, b.digest) == 404
    r = c.get_manifest(repo, "v1")
    assert r.status == 200 and r.body == tagged.data, r
    for b in tagged.blobs:
        assert rh.blob_status(c, repo, b.digest) == 200


# --------------------------------------------------------------------------
# Anchors and merge keys in a real config

PROXY_YAML = """\
listen: 127.0.0.1:{port}
root: {root}
proxy:
  - &mirror
    prefix: a/
    upstream: http://127.0.0.1:9
    ttl_seconds: 300
  - <<: *mirror
    prefix: b/
"""
PROXY = both_forms(PROXY_YAML, {
    "listen": "127.0.0.1:{port}", "root": "{root}",
    "proxy": [{"prefix": "a/", "upstream": "http://127.0.0.1:9",
               "ttl_seconds": 300},
              {"prefix": "b/", "upstream": "http://127.0.0.1:9",
               "ttl_seconds": 300}]})


@pytest.mark.parametrize("name,text", PROXY, ids=form_ids(PROXY))
def test_anchor_and_merge_key(start, name, text):
    reg = start(name, text)
    c = reg.client()
    # Both prefixes are read-only mirrors: the merged entry has the
    # anchor's upstream with its own prefix.
    for repo in ("a/x", "b/x"):
        rh.expect_error(c.post("/v2/%s/blobs/uploads/" % repo), 405,
                        "UNSUPPORTED")
    assert c.post("/v2/c/x/blobs/uploads/").status == 202


# --------------------------------------------------------------------------
# Refused at start

def alias_bomb():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append("a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)]
                                                          * 10)))
    return "\n".join(lines) + "\n"


BAD = [
    ("config.yaml", "listen: 127.0.0.1:5000\nroot: [unclosed\n",
     "3:1: invalid YAML: flow sequence without a closing bracket"),
    ("config.yml", "auth:\n\tanonymous_pull: true\n",
     "2:1: invalid YAML: tab character may not be used as indentation"),
    ("config.yaml", "root: /srv/a\nlisten: :5000\nroot: /srv/b\n",
     "3:1: duplicate key `root`"),
    ("config.yaml", "root: !secret x\n",
     "1:7: unsupported tag `!secret` (only !!str, !!int, !!float, !!bool, "
     "!!null, !!map and !!seq)"),
    ("config.yaml", "listen: :5000\n---\nroot: /srv\n",
     "2:1: more than one YAML document"),
    ("config.yaml", "limits:\n  max_body_bytes: 1e999\n",
     "2:19: `1e999` is out of range for a double"),
    ("config.yaml", "proxy:\n  - <<: *nothing\n",
     "2:9: alias `*nothing`: no such anchor before it"),
    ("registry.conf", "root: /srv/\udcff\n", "1:12: invalid YAML: not UTF-8"),
    ("config.yaml", alias_bomb(),
     "5:45: aliases expand to more than 100000 nodes (an alias bomb?)"),
    # The checks after parsing say the same as for JSON.
    ("config.yaml", "lisen: :5000\n", "lisen: unknown setting"),
    ("config.yaml", "gc:\n  delete_untagged: yes\n",
     "gc.delete_untagged: expected a boolean"),
    ("config.json", json.dumps({"gc": {"delete_untagged": "yes"}}),
     "gc.delete_untagged: expected a boolean"),
    ("config.yaml", "", "expected a JSON object"),
    ("config.yaml", "- root: /srv\n", "expected a JSON object"),
    # The name decides: YAML in a .json file is not JSON.
    ("config.json", "root: /srv\n",
     "1:4: invalid JSON: '[' or '{' expected near 'root'"),
]


@pytest.mark.parametrize("name,text,message", BAD,
                         ids=["%d-%s" % (i, b[0]) for i, b in enumerate(BAD)])
def test_bad_config_refused(name, text, message):
    top = tempfile.mkdtemp(prefix="berth-regyaml-", dir="/tmp")
    try:
        path = os.path.join(top, name)
        with open(path, "wb") as f:
            f.write(text.encode("utf-8", "surrogateescape"))
        # --listen and --root so that a config wrongly accepted would run
        # somewhere harmless until the timeout fails the test.
        p = subprocess.run([rh.registry_binary(), "--config", path,
                            "--listen", "127.0.0.1:0",
                            "--root", os.path.join(top, "root")],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
        sep = ":" if message[0].isdigit() else ": "
        want = "berth-registry: %s%s%s\n" % (path, sep, message)
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert p.stderr.decode(errors="replace") == want
        assert not os.path.exists(os.path.join(top, "root"))
    finally:
        shutil.rmtree(top, ignore_errors=True)
