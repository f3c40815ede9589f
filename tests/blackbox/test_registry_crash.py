"""kill -9 during uploads: after a restart on the same root nothing corrupt
is served and every push that completed (got its 201) is there.

Several threads push images (random layers, chunked and monolithic) while
the registry is killed with SIGKILL at a random moment, three times over.
After each restart, every manifest that was acknowledged must pull, and
every blob it names must be served whole with the right digest; a blob
that was never acknowledged is either absent or correct, never partial.
"""
import hashlib
import os
import random
import signal
import threading
import time

import pytest

pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402
from registry_helpers import IS_DOCKER_REGISTRY  # noqa: E402

pytest_plugins = ["registry_helpers"]


class Pusher(threading.Thread):
    """Pushes images until told to stop or the server goes away; records
    what was acknowledged."""

    def __init__(self, reg, n):
        super().__init__(daemon=True)
        self.host = reg.host
        self.repo = rh.new_repo("crash%d" % n)
        self.done = []          # (repo, tag, manifest) acknowledged
        self.stop_flag = threading.Event()

    def run(self):
        client = rh.Client(self.host, timeout=5)
        i = 0
        while not self.stop_flag.is_set():
            img = rh.build_image(layers=2, layer_size=random.choice(
                [4096, 300000, 2 * 1024 * 1024]))
            tag = "v%d" % i
            i += 1
            try:
                for b in img.blobs:
                    if random.random() < 0.5:
                        rh.push_blob_chunked(client, self.repo, b.data, 65536,
                                             b.digest)
                    else:
                        rh.push_blob(client, self.repo, b.data, b.digest)
                rh.push_manifest(client, self.repo, img, ref=tag,
                                 push_content=False)
            except (OSError, AssertionError):
                return          # the server was killed mid-push
            self.done.append((self.repo, tag, img))


def check_served(client, repo, tag, img):
    r = client.get_manifest(repo, tag)
    assert r.status == 200, (repo, tag, r)
    assert r.body == img.data
    for b in img.blobs:
        r = client.get_blob(repo, b.digest)
        assert r.status == 200, (repo, b.digest, r)
        assert "sha256:" + hashlib.sha256(r.body).hexdigest() == b.digest


@pytest.mark.skipif(IS_DOCKER_REGISTRY,
                    reason="kills and restarts berth-registry on its root")
def test_kill_9_during_uploads(fresh_registry):
    reg = fresh_registry
    acknowledged = []
    for round_ in range(3):
        pushers = [Pusher(reg, round_ * 10 + k) for k in range(3)]
        for p in pushers:
            p.start()
        time.sleep(random.uniform(0.3, 1.0))
        os.kill(reg.proc.pid, signal.SIGKILL)
        reg.proc.wait()
        for p in pushers:
            p.stop_flag.set()
            p.join(10)
            acknowledged += p.done
        reg.restart()
        client = reg.client()
        for repo, tag, img in acknowledged:
            check_served(client, repo, tag, img)
    assert acknowledged, "no push completed before the kills"
    # Nothing half-written is left visible: every blob file under the
    # root has the digest its name says.
    blobs = os.path.join(reg.root, "blobs")
    checked = 0
    for alg in os.listdir(blobs):
        for dirpath, _, files in os.walk(os.path.join(blobs, alg)):
            for name in files:
                path = os.path.join(dirpath, name)
                h = hashlib.new(alg)
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                assert h.hexdigest() == name, "corrupt blob %s" % path
                checked += 1
    assert checked >= len(acknowledged)
