"""What was built, against what, and what each op runs on (`python -m gankernels info`)."""

from __future__ import annotations

import torch

from ._extension import STATUS
from .ops import OP_NAMES, auto_choice, available


def backends() -> dict:
    """The build and the backend choice: what `impl="auto"` runs for each op on CPU and CUDA."""
    info = STATUS.build_info or {}
    return {
        "extension_loaded": STATUS.loaded,
        "extension_error": STATUS.error,
        "built_with_cuda": STATUS.with_cuda,
        "torch_built": info.get("torch"),
        "torch_running": torch.__version__,
        "cuda_built": info.get("cuda"),
        "cuda_running": torch.version.cuda,
        "nvcc": info.get("nvcc"),
        "cuda_arch_list": info.get("arch_list"),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "ops": {
            name: {
                "cpu": available("cpu"),
                "cuda": available("cuda"),
                "auto_cpu": auto_choice("cpu"),
                "auto_cuda": auto_choice("cuda"),
            }
            for name in OP_NAMES
        },
    }


def format_info() -> str:
    from . import __version__

    b = backends()
    lines = [
        f"gankernels {__version__}",
        f"torch: built against {b['torch_built']}, running {b['torch_running']}",
        f"CUDA: built against {b['cuda_built']} (nvcc {b['nvcc']}), running {b['cuda_running']}",
        f"CUDA arch list: {b['cuda_arch_list']}",
        f"compiled kernels (_C): {'loaded' if b['extension_loaded'] else 'NOT loaded'}"
        + (f" ({b['extension_error']})" if b["extension_error"] else "")
        + (", with CUDA kernels" if b["built_with_cuda"] else ", CPU kernels only"),
        f"GPU: {b['gpu'] or 'none visible'}",
        "",
        f"{'op':<18} {'available on CPU':<22} {'available on CUDA':<22} {'auto CPU':<9} auto CUDA",
    ]
    for name, op in b["ops"].items():
        lines.append(
            f"{name:<18} {','.join(op['cpu']):<22} {','.join(op['cuda']):<22} "
            f"{op['auto_cpu']:<9} {op['auto_cuda']}"
        )
    return "\n".join(lines)
