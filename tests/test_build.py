"""The build and the extension's loading: what was built, and the fallback when it can't load."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

import torch

import gankernels
from gankernels._extension import STATUS
from gankernels.ops import OP_NAMES

COMPILED_OPS = (
    "gp_interpolate",
    "gp_interpolate_backward",
    "norm_penalty",
    "norm_penalty_backward",
    "adversarial_loss",
    "adversarial_loss_backward",
    "clip_",
    "ema_",
    "mmd2",
    "mmd2_backward",
)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("GANKERNELS_IMPL", None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        cwd=tempfile.gettempdir(),
    )


def test_extension_loaded_with_every_op_on_cpu():
    assert STATUS.loaded, f"gankernels._C did not load: {STATUS.error}"
    for name in COMPILED_OPS:
        assert hasattr(torch.ops.gankernels, name), name
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"gankernels::{name}", "CPU"), name


def test_build_info_matches_running_torch():
    info = STATUS.build_info
    assert info is not None
    assert info["torch"] == torch.__version__
    if info["with_cuda"]:
        assert info["cuda"] == torch.version.cuda
        assert info["arch_list"]
    path = os.path.join(os.path.dirname(gankernels.__file__), "_build_info.json")
    with open(path) as f:
        assert json.load(f) == info


def test_extension_uses_the_limited_api():
    import gankernels._C as ext

    assert ext.__file__.endswith(".abi3.so"), ext.__file__


def test_auto_uses_the_compiled_cpu_kernels():
    for name in OP_NAMES:
        assert gankernels.backends()["ops"][name]["auto_cpu"] == "cpu"


FALLBACK_CHECK = """
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import gankernels
        import gankernels.ops
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert "pip install --no-build-isolation ." in messages[0], messages[0]
    print(messages[0])
    import torch
    from gankernels import reference
    real, fake, eps = torch.randn(3, 4), torch.randn(3, 4), torch.rand(3)
    out = gankernels.gp_interpolate(real, fake, eps)
    torch.testing.assert_close(out, reference.gp_interpolate(real, fake, eps))
    assert gankernels.backends()["ops"]["norm_penalty"]["auto_cpu"] == "ref"
    loss, norms = gankernels.norm_penalty(torch.zeros(2, 3, requires_grad=True))
    try:
        gankernels.norm_penalty(torch.randn(2, 3), impl="cpu")
    except RuntimeError as exc:
        assert "gankernels._C" in str(exc), exc
    else:
        raise AssertionError("impl='cpu' without _C must raise")
"""


def test_fallback_when_extension_is_hidden():
    result = _run(
        "import sys\nsys.modules['gankernels._C'] = None\n" + textwrap.dedent(FALLBACK_CHECK)
    )
    assert result.returncode == 0, result.stderr
    assert "failed to load" in result.stdout


def test_fallback_when_built_against_another_torch():
    result = _run("import torch\ntorch.__version__ = '1.0.0'\n" + textwrap.dedent(FALLBACK_CHECK))
    assert result.returncode == 0, result.stderr
    assert "built against torch" in result.stdout and "running torch 1.0.0" in result.stdout


def test_import_is_quiet_when_the_extension_loads():
    result = _run("""
        import warnings
        warnings.simplefilter("error")
        import gankernels
        import sys
        assert "triton" not in sys.modules, "import gankernels must not import triton"
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def test_info_command_reports_every_op():
    result = subprocess.run(
        [sys.executable, "-m", "gankernels", "info"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tempfile.gettempdir(),
    )
    assert result.returncode == 0, result.stderr
    assert f"running {torch.__version__}" in result.stdout
    for name in OP_NAMES:
        assert name in result.stdout
    assert "compiled kernels (_C): loaded" in result.stdout, result.stdout


def test_an_unbuilt_source_tree_says_what_happened(tmp_path):
    """Python started in a checkout imports the checkout, which has no _C: the warning says so
    and what helps (another directory, or an in-place build), not a rebuild of the installed
    package that the checkout shadows."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(
        os.path.dirname(gankernels.__file__),
        repo / "gankernels",
        ignore=shutil.ignore_patterns("_C*.so", "_build_info.json", "__pycache__"),
    )
    (repo / "setup.py").write_text("")
    (repo / "csrc").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "GANKERNELS_IMPL")}
    code = textwrap.dedent("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import gankernels
        print(gankernels.__file__)
        print([str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)])
        from gankernels._extension import STATUS
        print(STATUS.error)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=repo, timeout=120
    )
    assert done.returncode == 0, done.stderr
    imported, warned, error = done.stdout.strip().splitlines()[-3:]
    assert imported.startswith(str(repo)), imported
    for text in (warned, error):
        assert f"This is the source tree at {repo}" in text, text
        assert "pip install --no-build-isolation -e ." in text, text
        assert "Rebuild with" not in text, text


def test_cpu_clone_wrappers_inline_the_loops_they_call():
    """A GK_CLONES function (csrc/cpu/partition.h) is compiled once per target, AVX2 and default.
    A function it calls that is not inlined exists once, compiled for the default target, and
    the AVX2 clone would run that SSE code: CPU mmd2 did, at a quarter of its speed. So the
    wrappers whose body is one call must have no out-of-line instance of the callee in _C."""
    nm = shutil.which("nm")
    assert nm, "binutils' nm is needed to list _C's symbols"
    callees = set()
    for name in sorted(os.listdir(os.path.join(ROOT, "csrc", "cpu"))):
        with open(os.path.join(ROOT, "csrc", "cpu", name)) as f:
            source = f.read()
        # GK_CLONES <signature> { [return] callee[<...>](...); }
        for match in re.finditer(r"GK_CLONES[^{;]*\{\s*(?:return\s+)?(\w+)(?:<[^>(]*>)?\(", source):
            callees.add(match.group(1))
    assert {"row_tile_sum", "strip_row_weights", "add_row_tile_gradient"} <= callees, callees
    library = gankernels._C.__file__
    symbols = subprocess.run([nm, "-C", library], capture_output=True, text=True, check=True).stdout
    out_of_line = [
        line
        for line in symbols.splitlines()
        if "[clone" not in line and any(re.search(rf"::{callee}(<|\()", line) for callee in callees)
    ]
    assert not out_of_line, "\n".join(out_of_line)
