import test_config_hooks as H
from config_helpers import read
def test_dbg(bundle, runtime, tmp_path):
    hooks = H.Hooks(bundle, tmp_path)
    hooks.add_all()
    bundle.set_args("sh", "-c", "echo process >> /tmp/log")
    cid = runtime.new_id()
    p = H._create(runtime, bundle, cid, tmp_path)
    print(p.returncode, read(str(tmp_path / "create.err")), hooks.kinds(), runtime.state(cid))
