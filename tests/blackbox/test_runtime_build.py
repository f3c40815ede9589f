"""How berth-runtime is linked (src/runtime/meson.build): static, so that
neither of its two execs per container runs the dynamic loader, and
position-independent with read-only relocations, so that it keeps ASLR."""
import os
import subprocess

import pytest

from conftest import BUILD, meson_option

RUNTIME = os.path.join(BUILD, "src", "runtime", "berth-runtime")


def readelf(*args):
    return subprocess.run(["readelf", *args, RUNTIME], capture_output=True,
                          text=True, check=True).stdout


def test_static_pie():
    if meson_option("static_runtime") != "true":
        pytest.skip("built with -Dstatic_runtime=false")
    assert "DYN (" in readelf("-hW"), "not position-independent"
    headers = readelf("-lW")
    assert "INTERP" not in headers, headers
    assert "GNU_RELRO" in headers, headers
    dynamic = readelf("-dW")
    assert "NEEDED" not in dynamic, dynamic
    assert "BIND_NOW" in dynamic, dynamic
