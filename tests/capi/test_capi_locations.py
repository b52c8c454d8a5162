"""`python -m pyimpl.capi --cmake-dir` and friends: where C builds find the wheel's library."""
import subprocess
import sys
import sysconfig
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess:
    """The module as a C build script calls it."""
    return subprocess.run([sys.executable, "-m", "pyimpl.capi", *args], capture_output=True, text=True, timeout=60)


def test_libpython_dir_is_this_pythons():
    out = run("--libpython-dir")
    assert out.returncode == 0
    assert out.stdout.strip() == sysconfig.get_config_var("LIBDIR")


def test_without_the_native_files_it_says_how_to_get_them():
    """A source checkout (editable install) has no pyimpl/capi/native: only the wheel carries it."""
    assert not (Path(__file__).resolve().parents[2] / "pyimpl" / "capi" / "native").exists()
    out = run("--cmake-dir")
    assert out.returncode == 1
    assert "dynamo-llm-capi wheel" in out.stderr and out.stdout == ""


def test_one_location_is_required():
    assert run().returncode == 2
    assert run("--cmake-dir", "--pkgconfig-dir").returncode == 2
