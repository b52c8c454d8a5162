"""setuptools hooks that put the C library into the dynamo-llm-capi wheel (pyproject's cmdclass).

build_py runs CMake and installs the .so, the .a, the header and the CMake/pkg-config files into
pyimpl/capi/native/ of the wheel (an editable install skips it: scripts/setup.sh builds build/);
bdist_wheel tags the wheel for this CPython and platform, since the library links its libpython.
"""
import os
import shutil
import subprocess
import sys

from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

NATIVE_DIR = os.path.join("pyimpl", "capi", "native")
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cmake_executable() -> str:
    """The cmake of the `cmake` pip package when installed (a build requirement), else PATH's."""
    try:
        import cmake

        return os.path.join(cmake.CMAKE_BIN_DIR, "cmake")
    except ImportError:
        found = shutil.which("cmake")
        if not found:
            raise RuntimeError("building the dynamo-llm-capi wheel needs cmake (pip install cmake)")
        return found


def build_native(build_dir: str, prefix: str) -> None:
    """Configure, build and install the library (no tests, no Python side) into prefix."""
    cmake = cmake_executable()
    subprocess.run([cmake, "-S", SOURCE_DIR, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                    f"-DPython3_EXECUTABLE={sys.executable}", "-DDYNAMO_LLM_WHEEL=ON",
                    "-DCMAKE_INSTALL_LIBDIR=lib", "-DCMAKE_INSTALL_INCLUDEDIR=include"], check=True)
    subprocess.run([cmake, "--build", build_dir, "-j", str(os.cpu_count() or 2)], check=True)
    shutil.rmtree(prefix, ignore_errors=True)
    subprocess.run([cmake, "--install", build_dir, "--prefix", prefix, "--strip"], check=True)


class BuildPy(build_py):
    """build_py, then the native files of the C ABI (not for an editable install)."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            build_temp = self.get_finalized_command("build").build_temp
            build_native(os.path.join(build_temp, "cmake"), os.path.join(self.build_lib, NATIVE_DIR))


class BdistWheel(bdist_wheel):
    """A cpXY-cpXY-<platform> wheel: it carries a shared library linked to this CPython."""

    def finalize_options(self) -> None:
        # platlib and a platform tag: as if the package had an extension module (it has a native library)
        self.distribution.has_ext_modules = lambda: True
        super().finalize_options()
