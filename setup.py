"""Build of gankernels._C: the CPU kernels always, the CUDA kernels when they can be built.

Environment:
  GANKERNELS_CUDA=0|1     force the CUDA kernels off or on (default: on when the build's torch
                          has CUDA and nvcc is found)
  CUDA_HOME               the CUDA toolkit (default: /usr/local/cuda, then nvcc on PATH)
  TORCH_CUDA_ARCH_LIST    GPU architectures; with no GPU visible the default is DEFAULT_ARCHS
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

from setuptools import find_packages, setup

DEFAULT_ARCHS = "8.0;9.0+PTX"
ROOT = os.path.dirname(os.path.abspath(__file__))


def _cuda_home() -> str | None:
    """The real toolkit: an `nvcc` wrapper script on PATH must not make /usr/local the home."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
            return home
    if os.path.exists("/usr/local/cuda/bin/nvcc"):
        return "/usr/local/cuda"
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    home = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    return home if os.path.exists(os.path.join(home, "lib64")) else None


CUDA_HOME = _cuda_home()
if CUDA_HOME is not None:
    # torch.utils.cpp_extension reads CUDA_HOME once, at import.
    os.environ["CUDA_HOME"] = CUDA_HOME

import torch  # noqa: E402
from torch.utils.cpp_extension import (  # noqa: E402
    BuildExtension,
    CppExtension,
    CUDAExtension,
)


def _want_cuda() -> bool:
    forced = os.environ.get("GANKERNELS_CUDA")
    possible = torch.version.cuda is not None and CUDA_HOME is not None
    if forced == "0":
        return False
    if forced == "1":
        if not possible:
            sys.exit(
                "GANKERNELS_CUDA=1 but the CUDA kernels cannot be built: "
                f"torch {torch.__version__} has CUDA {torch.version.cuda}, nvcc home {CUDA_HOME}"
            )
        return True
    return possible


def _nvcc_version() -> str | None:
    try:
        out = subprocess.run(
            [os.path.join(CUDA_HOME, "bin", "nvcc"), "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError, TypeError):
        return None
    for token in out.replace(",", " ").split():
        if token.startswith("V") and token[1:2].isdigit():
            return token[1:]
    return None


WITH_CUDA = _want_cuda()
if WITH_CUDA and not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
    os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCHS

# py_limited_api=True makes torch define Py_LIMITED_API for its oldest CPython (3.10): one abi3
# wheel serves every later version.
# -fno-trapping-math lets GCC if-convert (and so vectorise) the clamps and selects of the CPU
# kernels' float math (csrc/host_math.h); nothing here reads floating-point exception flags.
cxx_flags = ["-O3", "-fno-trapping-math", "-fopenmp", "-DGANKERNELS_OPENMP"]
sources = [
    "csrc/ops.cpp",
    "csrc/module.cpp",
    *sorted(glob.glob("csrc/autograd/*.cpp")),
    *sorted(glob.glob("csrc/cpu/*.cpp")),
]
include_dirs = [os.path.join(ROOT, "csrc")]

if WITH_CUDA:
    sources += sorted(glob.glob("csrc/cuda/*.cu"))
    # Some torch CUDA headers reach for cuBLAS/cuSPARSE headers, shipped in the nvidia wheels.
    for site in sys.path:
        wheel_include = os.path.join(site, "nvidia", "cu13", "include")
        if os.path.isdir(wheel_include):
            include_dirs.append(wheel_include)
            break
    extension = CUDAExtension(
        "gankernels._C",
        sources,
        include_dirs=include_dirs,
        extra_compile_args={
            "cxx": [*cxx_flags, "-DGANKERNELS_WITH_CUDA"],
            "nvcc": ["-O3", "-lineinfo", "-DGANKERNELS_WITH_CUDA"],
        },
        extra_link_args=["-fopenmp"],
        py_limited_api=True,
    )
else:
    extension = CppExtension(
        "gankernels._C",
        sources,
        include_dirs=include_dirs,
        extra_compile_args={"cxx": cxx_flags},
        extra_link_args=["-fopenmp"],
        py_limited_api=True,
    )


class BuildWithInfo(BuildExtension):
    """Writes down what the extension was compiled against, next to the library itself."""

    def run(self) -> None:
        super().run()
        info = {
            "torch": torch.__version__,
            "cuda": torch.version.cuda if WITH_CUDA else None,
            "nvcc": _nvcc_version() if WITH_CUDA else None,
            "arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if WITH_CUDA else None,
            "with_cuda": WITH_CUDA,
        }
        target_dir = os.path.dirname(self.get_ext_fullpath("gankernels._C"))
        os.makedirs(target_dir, exist_ok=True)
        with open(os.path.join(target_dir, "_build_info.json"), "w") as f:
            json.dump(info, f, indent=2)


setup(
    packages=find_packages(include=["gankernels", "gankernels.*"]) + ["gankernels_plugins"],
    ext_modules=[extension],
    cmdclass={"build_ext": BuildWithInfo.with_options(use_ninja=True)},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
