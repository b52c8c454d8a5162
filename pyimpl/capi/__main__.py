"""`python -m pyimpl.capi --cmake-dir`: where the wheel's C library files are, for C/C++ builds.

Put the printed folder on CMAKE_PREFIX_PATH (or DynamoLLM_DIR) for find_package(DynamoLLM),
or on PKG_CONFIG_PATH (--pkgconfig-dir) for pkg-config, as pybind11 --cmakedir does.
"""
import argparse
import sys
import sysconfig
from pathlib import Path

NATIVE = Path(__file__).resolve().parent / "native"

LOCATIONS = {
    "prefix": NATIVE,
    "cmake_dir": NATIVE / "lib" / "cmake" / "DynamoLLM",
    "pkgconfig_dir": NATIVE / "lib" / "pkgconfig",
    "include_dir": NATIVE / "include",
    "lib_dir": NATIVE / "lib",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyimpl.capi", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    for name in LOCATIONS:
        group.add_argument("--" + name.replace("_", "-"), dest="what", action="store_const", const=name,
                           help=f"print the {name.replace('_', ' ')} of the installed C library")
    group.add_argument("--libpython-dir", dest="what", action="store_const", const="libpython",
                       help="print the folder of the libpython the library loads (for LD_LIBRARY_PATH elsewhere)")
    what = parser.parse_args(argv).what
    if what == "libpython":
        print(sysconfig.get_config_var("LIBDIR"))
        return 0
    if not LOCATIONS["cmake_dir"].is_dir():
        print(f"no C library in this install ({NATIVE} is missing): install the dynamo-llm-capi wheel, "
              "or in a source checkout build it with scripts/setup.sh (build/)", file=sys.stderr)
        return 1
    print(LOCATIONS[what])
    return 0


if __name__ == "__main__":
    sys.exit(main())
