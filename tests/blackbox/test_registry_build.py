"""How berth-registry is linked (src/registry/meson.build): a static PIE
laid out by src/registry/link-order.txt.  The layout only saves memory,
so what is checked is that the binary is what the build says and that the
order file still names the code it is meant to place."""
import os
import subprocess

import pytest

from conftest import BUILD, meson_option
from registry_helpers import IS_DOCKER_REGISTRY, REGISTRY

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ORDER = os.path.join(TOP, "src", "registry", "link-order.txt")
BUILT = os.path.join(BUILD, "src", "registry", "berth-registry")

pytestmark = pytest.mark.skipif(
    IS_DOCKER_REGISTRY or os.path.realpath(REGISTRY) != os.path.realpath(BUILT),
    reason="checks the build's own berth-registry")


def elf_program_headers(path):
    return subprocess.run(["readelf", "-lW", path], capture_output=True,
                          text=True, check=True).stdout


def test_static_pie_without_loader():
    if meson_option("static_registry") != "true":
        pytest.skip("built with -Dstatic_registry=false")
    headers = elf_program_headers(BUILT)
    assert "DYN (" in headers, "not position-independent:\n" + headers
    assert "INTERP" not in headers, "asks for a dynamic loader:\n" + headers
    dynamic = subprocess.run(["readelf", "-dW", BUILT], capture_output=True,
                             text=True, check=True).stdout
    assert "NEEDED" not in dynamic, "links shared libraries:\n" + dynamic
    # Hardened as the distribution's programs: relocated data read-only
    # after start, the ifunc slots included.
    assert "GNU_RELRO" in headers, headers
    assert "BIND_NOW" in dynamic, dynamic


def test_link_order_names_the_binarys_functions():
    if meson_option("static_registry") != "true":
        pytest.skip("built with -Dstatic_registry=false: no order applied")
    names = []
    with open(ORDER) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    assert len(names) > 200, "link-order.txt lists only %d names" % len(names)
    nm = subprocess.run(["nm", "--defined-only", BUILT], capture_output=True,
                        text=True, check=True).stdout
    defined = {parts[2] for parts in (l.split() for l in nm.splitlines())
               if len(parts) == 3}
    missing = [n for n in names if n not in defined]
    # A few names come and go with the C library's and OpenSSL's builds;
    # many missing means the code was renamed: scripts/gen-link-order.sh.
    assert len(missing) <= len(names) // 10, (
        "%d of %d names in link-order.txt are not in the binary (run "
        "scripts/gen-link-order.sh): %s" % (len(missing), len(names),
                                             " ".join(missing[:20])))
    # The hot part is laid out first: the start of the order lands at
    # the start of .text.
    syms = {}
    for parts in (l.split() for l in nm.splitlines()):
        if len(parts) == 3 and parts[1] in "tT":
            syms.setdefault(parts[2], int(parts[0], 16))
    sections = subprocess.run(["readelf", "-SW", BUILT], capture_output=True,
                              text=True, check=True).stdout
    text = next(l for l in sections.splitlines() if " .text " in l)
    fields = text.split("]", 1)[1].split()
    text_start, text_size = int(fields[2], 16), int(fields[4], 16)
    placed = [syms[n] for n in names[:100] if n in syms]
    assert placed, "none of the first names is a function of the binary"
    far = [a for a in placed if a - text_start > text_size // 4]
    assert len(far) <= len(placed) // 10, (
        "%d of the first %d ordered functions lie past the first quarter of "
        ".text: the order file is not applied" % (len(far), len(placed)))
