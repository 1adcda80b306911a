"""The gankernels benchmark suite (`pytest bench/`): fused kernels against eager PyTorch and
torch.compile. A package so its modules never clash with the test modules in tests/."""

import os as _os
import sys as _sys

# pytest puts the repository root first on sys.path to import this package; moved to the end,
# `import gankernels` still finds the installed package (with its compiled _C) before the
# source tree, which has no _C in a fresh clone.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
_entries = [p for p in _sys.path if p and _os.path.abspath(p) == _root]
if _entries:
    _sys.path[:] = [p for p in _sys.path if p not in _entries] + _entries
