"""pip install ./python (or make python): the hestat package with
libhestat.so copied into it (hestat/_lib/libhestat.so.0), so that it imports
without setting any path. The library is taken from $HESTAT_LIBRARY, else
from ../build/lib (run make first); when neither exists the package relies on
an installed one (make install). No PyPI access is needed: build with
--no-build-isolation (setuptools from Debian's python3-setuptools)."""
import os
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        src = os.environ.get("HESTAT_LIBRARY") or os.path.join(HERE, os.pardir, "build", "lib", "libhestat.so.0")
        if os.path.exists(src):
            dst = os.path.join(self.build_lib, "hestat", "_lib")
            os.makedirs(dst, exist_ok=True)
            shutil.copyfile(os.path.realpath(src), os.path.join(dst, "libhestat.so.0"))
        else:
            print("hestat: %s not found (run make first); the package will look for an installed "
                  "libhestat.so.0" % src)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # it carries a shared library: a platform wheel
        return True


setup(
    name="hestat",
    version="0.1.0",
    description="Statistics on encrypted tables (RNS-CKKS) over libhestat",
    packages=["hestat"],
    python_requires=">=3.9",
    install_requires=["numpy", "pandas"],
    cmdclass={"build_py": BuildWithLibrary},
    distclass=BinaryDistribution,
)
