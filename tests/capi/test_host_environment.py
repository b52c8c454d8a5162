"""The C library's Python side leaves the host process's environment alone (its OpenMP settings are the host's)."""
import os
import subprocess
import sys


def test_loading_the_c_side_sets_no_openmp_policy():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = ("import os, pyimpl.capi.bridge, pyimpl.capi.session; "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"
