"""berth-registry over TLS with a configured certificate: HTTPS answers and
verifies against the certificate, plain HTTP does not get through, skopeo
pushes and inspects with certificate verification on, and a half-given
TLS configuration is refused at start."""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

pytest.register_assert_rewrite("registry_helpers")
import registry_helpers as rh  # noqa: E402
from registry_helpers import IS_DOCKER_REGISTRY  # noqa: E402

pytestmark = pytest.mark.skipif(IS_DOCKER_REGISTRY,
                                reason="berth-registry's own TLS config")


@pytest.fixture
def tls_registry():
    top = tempfile.mkdtemp(prefix="berth-tls-")
    proc = None
    try:
        cert, key = os.path.join(top, "cert.pem"), os.path.join(top, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True)
        cfg = os.path.join(top, "config.json")
        with open(cfg, "w") as f:
            json.dump({"tls": {"certificate": cert, "key": key}}, f)
        root = os.path.join(top, "root")
        os.mkdir(root)
        port = rh.free_port()
        log = open(os.path.join(top, "log"), "w")
        proc = subprocess.Popen(
            [rh.registry_binary(), "--config", cfg, "--listen",
             "127.0.0.1:%d" % port, "--root", root],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True)
        ctx = ssl.create_default_context(cafile=cert)
        deadline = time.time() + 20
        while True:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx,
                                                timeout=2)
                c.request("GET", "/v2/")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, open(log.name).read()
            assert time.time() < deadline, "TLS registry never answered"
            time.sleep(0.05)
        yield {"port": port, "cert": cert, "ctx": ctx, "top": top,
               "pid": proc.pid}
    finally:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(top, ignore_errors=True)


def test_https_answers_and_verifies(tls_registry):
    c = http.client.HTTPSConnection("127.0.0.1", tls_registry["port"],
                                    context=tls_registry["ctx"], timeout=10)
    c.request("GET", "/v2/")
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("Docker-Distribution-API-Version") == "registry/2.0"
    # Without the certificate as a trust anchor the handshake fails.
    with pytest.raises(ssl.SSLError):
        c2 = http.client.HTTPSConnection(
            "127.0.0.1", tls_registry["port"],
            context=ssl.create_default_context(), timeout=10)
        c2.request("GET", "/v2/")
        c2.getresponse()


def test_plain_http_gets_nothing(tls_registry):
    c = http.client.HTTPConnection("127.0.0.1", tls_registry["port"],
                                   timeout=5)
    with pytest.raises((OSError, http.client.HTTPException)):
        c.request("GET", "/v2/")
        r = c.getresponse()
        assert r.status != 200
        r.read()
        raise OSError("answered %d" % r.status)


def test_skopeo_over_verified_tls(tls_registry, image):
    certs = os.path.join(tls_registry["top"], "certs")
    os.mkdir(certs)
    shutil.copy(tls_registry["cert"], os.path.join(certs, "ca.crt"))
    ref = "docker://127.0.0.1:%d/tls/busybox:latest" % tls_registry["port"]
    subprocess.run(["skopeo", "copy", "-q", "--dest-cert-dir", certs,
                    "oci:%s:latest" % os.path.join(image, "oci"), ref],
                   check=True, timeout=120)
    out = subprocess.run(["skopeo", "inspect", "--cert-dir", certs, ref],
                         check=True, capture_output=True, text=True,
                         timeout=60).stdout
    assert json.loads(out)["Name"].endswith("/tls/busybox")


def test_half_tls_config_is_refused(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"tls": {"certificate": "/nonexistent.pem"}}))
    root = tmp_path / "root"
    root.mkdir()
    p = subprocess.run([rh.registry_binary(), "--config", str(cfg),
                        "--listen", "127.0.0.1:0", "--root", str(root)],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "tls" in p.stderr, p.stderr


def test_pipelined_requests_buffered_in_tls_all_answered(tls_registry):
    """Many large requests in one TLS write: a TLS record (16 KiB) holds
    more than the server reads at once, so after it has answered what it
    read, the rest waits decrypted inside libssl, where epoll cannot see
    it.  Every request must be answered (the connection goes back on the
    worker's ready list), not left until the client gives up."""
    n = 200
    raw = socket.create_connection(("127.0.0.1", tls_registry["port"]),
                                   timeout=20)
    with tls_registry["ctx"].wrap_socket(raw,
                                         server_hostname="127.0.0.1") as s:
        reqs = ["GET /v2/?i=%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n"
                % (i, "p" * 1000)
                for i in range(n - 1)]
        reqs.append("GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.sendall("".join(reqs).encode())
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    assert data.count(b"HTTP/1.1 200 ") == n, data[-300:]
    assert data.endswith(b"{}"), data[-300:]


def read_syscalls(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("syscr:"):
                return int(line.split()[1])
    raise AssertionError("no syscr in /proc/%d/io" % pid)


@pytest.mark.parametrize("when", ["before-handshake", "after-a-request"])
def test_partial_tls_record_waits_for_the_socket(tls_registry, when):
    """A client that sends part of a TLS record and stops: libssl holds the
    bytes (SSL_has_pending says so) but cannot use them until the rest
    comes.  The connection waits for the socket instead of going round the
    worker's ready list, reading again and again: over a quiet second, the
    server makes (next to) no read calls."""
    raw = socket.create_connection(("127.0.0.1", tls_registry["port"]),
                                   timeout=20)
    try:
        if when == "before-handshake":
            raw.sendall(b"\x16\x03\x01\x02\x00\x01")  # a header and 1 byte
            s = raw
        else:
            s = tls_registry["ctx"].wrap_socket(raw,
                                                server_hostname="127.0.0.1")
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
            # Part of an application-data record, under the TLS layer.
            os.write(s.fileno(), b"\x17\x03\x03\x00\x40\x00")
        time.sleep(0.5)
        pid = tls_registry["pid"]
        before = read_syscalls(pid)
        time.sleep(1)
        reads = read_syscalls(pid) - before
        assert reads < 50, "%d reads in a quiet second: the worker spins" % reads
        # The server still answers others.
        c = http.client.HTTPSConnection("127.0.0.1", tls_registry["port"],
                                        context=tls_registry["ctx"], timeout=10)
        c.request("GET", "/v2/")
        assert c.getresponse().status == 200
        c.close()
    finally:
        raw.close()
