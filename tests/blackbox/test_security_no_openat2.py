"""Fault injection: the CVE-2021-30465 tests again with openat2 disabled, so
the runtime resolves mount destinations with its userspace fallback (the
path taken on kernels before 5.6 or under seccomp profiles that refuse
openat2).  BERTH_TEST_NO_OPENAT2 only selects the fallback; it weakens
nothing."""
import os

import pytest

from conftest import RUNTIME
from test_security import (  # noqa: F401  (collected again here)
    test_cve_2021_30465_absolute_symlink_destination,
    test_cve_2021_30465_dotdot_symlink_destination,
    test_cve_2021_30465_no_host_mount_while_running,
    test_cve_2021_30465_symlink_in_middle_component,
)

pytestmark = pytest.mark.skipif(
    os.path.basename(RUNTIME) == "runc",
    reason="BERTH_TEST_NO_OPENAT2 is berth-runtime's switch")


@pytest.fixture(autouse=True)
def no_openat2(monkeypatch):
    monkeypatch.setenv("BERTH_TEST_NO_OPENAT2", "1")
