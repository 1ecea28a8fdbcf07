"""Builds perfopt's Python package: `pip install --no-build-isolation ./python` (offline, with the
setuptools Debian ships). The C extension links libperfopt statically, from the repository's
build (PERFOPT_BUILD, default ../build: run `make` first; headers from PERFOPT_INCLUDE, default
../include) or from an installed perfopt found with pkg-config (`make install`); only the
extension's init function is exported, so the library inside never clashes with another copy of
libperfopt in the same process. Also installs `performance_optimizer`, the seed's module name."""
import os
import shlex
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def find_perfopt():
    """(include dir, static library) of the repository's build, else of an installed perfopt."""
    build = os.environ.get("PERFOPT_BUILD") or os.path.join(ROOT, "build")
    include = os.environ.get("PERFOPT_INCLUDE") or os.path.join(ROOT, "include")
    lib = os.path.join(build, "libperfopt.a")
    if os.path.exists(os.path.join(include, "perfopt.h")) and os.path.exists(lib):
        return include, lib
    libdir, incdir = pkg_config("--variable=libdir", "perfopt"), pkg_config(
        "--variable=includedir", "perfopt")
    if libdir and incdir and os.path.exists(os.path.join(libdir, "libperfopt.a")):
        return incdir, os.path.join(libdir, "libperfopt.a")
    raise SystemExit("perfopt: libperfopt.a not found: run `make` in the repository (or set "
                     "PERFOPT_BUILD to its build directory), or install perfopt (`make install`) "
                     "so that pkg-config finds it")


include, lib = find_perfopt()
# What libperfopt itself links against (the Makefile's LIB_LIBS).
libs = pkg_config("--libs", "libcjson", "libmicrohttpd", "libdw", "libelf")

extension = Extension(
    "perfopt._perfopt",
    sources=sorted(os.path.join("ext", n) for n in os.listdir(os.path.join(HERE, "ext"))
                   if n.endswith(".c")),
    include_dirs=[include],
    extra_compile_args=["-std=c11", "-D_GNU_SOURCE", "-fvisibility=hidden"],
    extra_objects=[lib],
    extra_link_args=shlex.split(libs or "-lcjson -lmicrohttpd -ldw -lelf")
    + ["-ldl", "-lm", "-lpthread", "-Wl,--exclude-libs,ALL"],
)

setup(ext_modules=[extension], packages=["perfopt"], py_modules=["performance_optimizer"])
