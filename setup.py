# SPDX-License-Identifier: Apache-2.0
"""pip install . -- the gradcomp Python package (python/gradcomp) and its C++ core, built by
CMake (the gradcomp_python target: pybind11 over the compiled scheme registry) for the
interpreter that runs this script. Debian: run it with /usr/bin/python3 (it has torch), e.g.
``/usr/bin/python3 -m pip install --no-build-isolation .`` in a venv made with
``--system-site-packages`` (scripts/setup-and-demo.sh does this). GRADCOMP_BUILD_DIR names a
CMake build directory to build in (one already configured is reused as it is, so a build that
compiled the registry does not compile it again); the default is build/python-package."""

import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.environ.get("GRADCOMP_BUILD_DIR") or os.path.join(ROOT, "build", "python-package")
        build = os.path.abspath(build)
        jobs = str(os.cpu_count() or 1)
        if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"] if shutil.which("ccache") else []
            subprocess.run(
                ["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                 "-DGRADCOMP_BUILD_TESTS=OFF", "-DGRADCOMP_BUILD_BENCHMARKS=OFF",
                 "-DGRADCOMP_BUILD_EXAMPLES=OFF", "-DGRADCOMP_ENABLE_PYTHON=ON",
                 "-DGRADCOMP_ENABLE_MPI=OFF", f"-DPYTHON_EXECUTABLE={sys.executable}"] + launcher,
                check=True)
        subprocess.run(["cmake", "--build", build, "--target", "gradcomp_python", "-j", jobs],
                       check=True)
        built = os.path.join(build, "python", "gradcomp")
        module = next(f for f in os.listdir(built) if f.startswith("_gradcomp") and f.endswith(".so"))
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(built, module), target)


setup(
    name="gradcomp",
    version="0.1.0",
    description="Gradient compressors for data-parallel training (layer-wise and entire-model)",
    license="Apache-2.0",
    packages=["gradcomp"],
    package_dir={"": "python"},
    ext_modules=[CMakeExtension("gradcomp._gradcomp")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
)
