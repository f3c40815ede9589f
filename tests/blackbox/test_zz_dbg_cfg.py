from config_helpers import *
def test_dbg(bundle, runtime):
    p = run_sh(runtime, bundle, "x=$(head -c 48000000 /dev/zero | tr '\\0' a); echo alive", check=False)
    print(repr(p.stdout), repr(p.stderr), p.returncode)
    bundle.config["linux"]["resources"]["memory"] = {"limit": 16 << 20, "swap": 16 << 20}
    p = run_sh(runtime, bundle, "x=$(head -c 48000000 /dev/zero | tr '\\0' a); echo alive", check=False)
    print(repr(p.stdout), repr(p.stderr), p.returncode)
