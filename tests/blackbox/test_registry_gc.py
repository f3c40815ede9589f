"""Online garbage collection: POST /admin/gc and the "gc" settings.

Unreferenced blobs go (after the grace period), referenced ones stay;
untagged manifests are kept or deleted by policy, with the children of a
live index and the referrers of a live manifest; and a collection running
repeatedly under concurrent pushes and pulls never loses an acknowledged
push nor serves a wrong blob.
"""
import random
import threading
import time

import pytest

pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402
from registry_helpers import IS_DOCKER_REGISTRY  # noqa: E402

pytest_plugins = ["registry_helpers"]

pytestmark = pytest.mark.skipif(IS_DOCKER_REGISTRY,
                                reason="berth-registry's admin endpoint")


@pytest.fixture
def gc_registry():
    """Starts a registry of its own with "gc" settings (grace 0 unless
    given): gc_registry(**settings)."""
    regs = []

    def start(**settings):
        gc = {"grace_seconds": 0}
        gc.update(settings)
        reg = rh.start_registry({"gc": gc})
        regs.append(reg)
        return reg

    try:
        yield start
        for reg in regs:
            reg.check_healthy()
    finally:
        for reg in regs:
            reg.stop()


def pull_verified(client, repo, ref, manifest):
    r = client.get_manifest(repo, ref)
    assert r.status == 200, (repo, ref, r)
    assert r.body == manifest.data
    for b in manifest.blobs:
        assert rh.blob_status(client, repo, b.digest) == 200, (repo, b.digest)
    for c in manifest.children:
        pull_verified(client, repo, c.digest, c)


def test_unreferenced_blobs_deleted(gc_registry):
    reg = gc_registry()
    c = reg.client()
    repo = rh.new_repo("gc")
    orphan = rh.random_bytes(3000)
    orphan_digest = rh.digest_of(orphan)
    rh.push_blob(c, repo, orphan)
    image = rh.build_image(layers=2)
    rh.push_manifest(c, repo, image, ref="v1")
    assert rh.blob_status(c, repo, orphan_digest) == 200

    stats = rh.run_gc(c)
    assert stats["blobs_deleted"] == 1
    assert stats["bytes_freed"] == 3000
    assert stats["manifests_deleted"] == 0
    assert rh.blob_status(c, repo, orphan_digest) == 404
    pull_verified(c, repo, "v1", image)
    # Idempotent: nothing more to collect.
    assert rh.run_gc(c)["blobs_deleted"] == 0
    pull_verified(c, repo, "v1", image)


def test_grace_period_protects_new_blobs(gc_registry):
    reg = gc_registry(**{"grace_seconds": 600})
    c = reg.client()
    repo = rh.new_repo("gc")
    data = rh.random_bytes(1000)
    rh.push_blob(c, repo, data)
    assert rh.run_gc(c)["blobs_deleted"] == 0
    assert rh.blob_status(c, repo, rh.digest_of(data)) == 200


def test_deleted_manifest_blobs_go(gc_registry):
    reg = gc_registry()
    c = reg.client()
    repo = rh.new_repo("gc")
    keep = rh.build_image(layers=1)
    gone = rh.build_image(layers=2, arch="arm64")
    rh.push_manifest(c, repo, keep, ref="keep")
    rh.push_manifest(c, repo, gone, ref="gone")
    r = c.delete("/v2/%s/manifests/%s" % (repo, gone.digest))
    assert r.status == 202
    stats = rh.run_gc(c)
    # Its layers, its config and its bytes.
    assert stats["blobs_deleted"] == 4, stats
    for b in gone.blobs:
        assert rh.blob_status(c, repo, b.digest) == 404
    pull_verified(c, repo, "keep", keep)


def test_untagged_manifests_kept_by_default(gc_registry):
    reg = gc_registry()
    c = reg.client()
    repo = rh.new_repo("gc")
    image = rh.build_image(layers=2)
    rh.push_manifest(c, repo, image)  # by digest: untagged
    stats = rh.run_gc(c)
    assert stats["manifests_deleted"] == 0 and stats["blobs_deleted"] == 0
    pull_verified(c, repo, image.digest, image)


def test_untagged_manifests_deleted_by_policy(gc_registry):
    reg = gc_registry(**{"delete_untagged": True})
    c = reg.client()
    repo = rh.new_repo("gc")
    tagged = rh.build_image(layers=1)
    untagged = rh.build_image(layers=2, arch="arm64")
    untag = rh.build_image(layers=1, arch="s390x")
    rh.push_manifest(c, repo, tagged, ref="v1")
    rh.push_manifest(c, repo, untagged)
    rh.push_manifest(c, repo, untag, ref="old")
    assert c.delete("/v2/%s/manifests/old" % repo).status == 202
    stats = rh.run_gc(c)
    assert stats["manifests_deleted"] == 2, stats
    for m in (untagged, untag):
        assert c.get_manifest(repo, m.digest).status == 404
        for b in m.blobs:
            assert rh.blob_status(c, repo, b.digest) == 404
    pull_verified(c, repo, "v1", tagged)


def test_index_children_and_referrers_kept(gc_registry):
    reg = gc_registry(**{"delete_untagged": True})
    c = reg.client()
    repo = rh.new_repo("gc")
    children = [rh.build_image(layers=1, arch=a) for a in ("amd64", "arm64")]
    index = rh.build_index(children)
    rh.push_manifest(c, repo, index, ref="multi")
    # A referrer (pushed by digest) of a live child: stays.
    sig = rh.build_artifact("application/example.sig",
                            subject=children[0].descriptor())
    rh.push_manifest(c, repo, sig)
    # A referrer of something that is not live: goes.
    lone = rh.build_image(layers=1, arch="ppc64le")
    rh.push_manifest(c, repo, lone)
    lone_sig = rh.build_artifact("application/example.sig",
                                 subject=lone.descriptor())
    rh.push_manifest(c, repo, lone_sig)

    stats = rh.run_gc(c)
    assert stats["manifests_deleted"] == 2, stats
    pull_verified(c, repo, "multi", index)
    pull_verified(c, repo, sig.digest, sig)
    assert c.get_manifest(repo, lone.digest).status == 404
    assert c.get_manifest(repo, lone_sig.digest).status == 404
    r = c.get("/v2/%s/referrers/%s" % (repo, children[0].digest))
    assert [m["digest"] for m in r.json()["manifests"]] == [sig.digest]


# --------------------------------------------------------------------------
# Under load

class Pusher(threading.Thread):
    """Pushes images with random layers (and orphan blobs) until stopped;
    records what was acknowledged."""

    def __init__(self, reg, n):
        super().__init__(daemon=True)
        self.host = reg.host
        self.repo = rh.new_repo("gcload%d" % n)
        self.images = []    # (tag, manifest) acknowledged
        self.orphans = []   # blob digests never referenced
        self.stop_flag = threading.Event()
        self.error = None

    def run(self):
        client = rh.Client(self.host, timeout=30)
        i = 0
        try:
            while not self.stop_flag.is_set():
                i += 1
                image = rh.build_image(layers=random.randint(1, 3),
                                       layer_size=random.randint(100, 50000))
                tag = "v%d" % i
                for attempt in range(20):
                    for b in image.blobs:
                        rh.push_blob(client, self.repo, b.data, b.digest)
                    r = rh.put_manifest(client, self.repo, tag, image.data,
                                        image.media_type)
                    if r.status == 201:
                        self.images.append((tag, image))
                        break
                    # A blob collected between its push and the manifest
                    # (the grace period is short): push again.
                    rh.expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
                else:
                    raise AssertionError("manifest never accepted")
                if i % 3 == 0:
                    data = rh.random_bytes(random.randint(10, 5000))
                    rh.push_blob(client, self.repo, data)
                    self.orphans.append(rh.digest_of(data))
        except Exception as e:  # noqa: BLE001
            self.error = e


class Puller(threading.Thread):
    def __init__(self, reg, pushers):
        super().__init__(daemon=True)
        self.host = reg.host
        self.pushers = pushers
        self.stop_flag = threading.Event()
        self.error = None
        self.pulls = 0

    def run(self):
        client = rh.Client(self.host, timeout=30)
        try:
            while not self.stop_flag.is_set():
                p = random.choice(self.pushers)
                if not p.images:
                    time.sleep(0.01)
                    continue
                tag, image = random.choice(list(p.images))
                pull_verified(client, p.repo, tag, image)
                self.pulls += 1
        except Exception as e:  # noqa: BLE001
            self.error = e


def test_gc_under_load(gc_registry):
    reg = gc_registry(**{"grace_seconds": 1})
    c = reg.client()
    pushers = [Pusher(reg, n) for n in range(3)]
    pullers = [Puller(reg, pushers) for _ in range(2)]
    for t in pushers + pullers:
        t.start()
    runs = 0
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        rh.run_gc(c)
        runs += 1
    for t in pushers + pullers:
        t.stop_flag.set()
    for t in pushers + pullers:
        t.join(60)
        assert not t.is_alive()
        assert t.error is None, "%r\nlog:\n%s" % (t.error, reg.log())
    assert runs >= 2
    assert sum(len(p.images) for p in pushers) > 0

    time.sleep(1.5)  # past the grace period of the orphans
    rh.run_gc(c)
    for p in pushers:
        for tag, image in p.images:
            pull_verified(c, p.repo, tag, image)
        for d in p.orphans:
            assert rh.blob_status(c, p.repo, d) == 404, d
