"""A third-party variant plugin, end to end: build and pip-install a tiny distribution that
registers a variant in the entry-point group `gankernels.variants`, see it listed by
`python -m gankernels variants` and train one step with it through `python -m gankernels train`.

The distribution goes into a temporary target directory put on the child interpreter's
PYTHONPATH, never into the environment running the tests."""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import subprocess
import sys
import textwrap

DIST = "gankernels-test-tiny-plugin"
MODULE = "gk_test_tiny_plugin"
NAME = "tiny-hinge"
# The README's example of a System (several networks, paired data), taken from the README itself.
SYSTEM_MODULE = "gk_test_readme_translate"
ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_system_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Several networks") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


PYPROJECT = f"""
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST}"
version = "0.0.1"
description = "a throw-away gankernels variant plugin built by the test suite"

[project.entry-points."gankernels.variants"]
{NAME} = "{MODULE}:tiny"
translate = "{SYSTEM_MODULE}:translate"

[tool.setuptools]
py-modules = ["{MODULE}", "{SYSTEM_MODULE}"]
"""

# The plugin uses only gankernels' public API, as a third party would.
PLUGIN = f'''
"""A hinge-loss GAN that counts its critic steps in its state."""

import torch

import gankernels
from gankernels.variants import Defaults, Variant


class TinyHinge(Variant):
    def init_state(self, device):
        return {{"step": 0, "tiny_critic_steps": torch.zeros((), device=device)}}

    def critic_loss(self, critic, generator, real, z, state, *, impl="auto"):
        with torch.no_grad():
            fake = generator(z)
        loss = gankernels.discriminator_loss(critic(real), critic(fake), kind="hinge", impl=impl)
        return loss, {{"loss": loss.detach(), "tiny_marker": torch.ones(())}}

    def generator_loss(self, critic, generator, real, z, state, *, impl="auto"):
        loss = gankernels.generator_loss(critic(generator(z)), kind="hinge", impl=impl)
        return loss, {{"loss": loss.detach()}}

    def after_critic_step(self, critic, state, *, impl="auto"):
        state["tiny_critic_steps"] = state["tiny_critic_steps"] + 1
        return {{}}


tiny = TinyHinge("{NAME}", "a tiny third-party hinge GAN",
                 Defaults(n_critic=2, lr_critic=1e-3, lr_generator=1e-3))
'''


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_third_party_plugin_is_found_and_trains(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / f"{MODULE}.py").write_text(PLUGIN)
    (src / f"{SYSTEM_MODULE}.py").write_text(readme_system_example())
    target = tmp_path / "site"
    run_dir = tmp_path / "run"
    system_dir = tmp_path / "system"
    done = _pip(
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(target),
        str(src),
    )
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    assert list(target.glob("*.dist-info")), "no distribution in the target directory"

    # A fresh interpreter with the target on its path sees the new distribution's entry point;
    # one interpreter for the listing and the training (starting one costs seconds).
    code = textwrap.dedent(f"""
        import sys
        from gankernels import variants
        from gankernels.__main__ import main
        print("dist:", variants.distribution_of("{NAME}"))
        main(["variants"])
        rc = main(["train", "--variant", "{NAME}", "--data", "ring8", "--steps", "1",
                   "--batch-size", "16", "--hidden", "16", "--depth", "1",
                   "--n-eval", "100", "--no-plots", "--no-progress",
                   "--out", {str(run_dir)!r}])
        rc = rc or main(["train", "--variant", "translate", "--data", "digits-edges",
                         "--steps", "2", "--batch-size", "16", "--n-eval", "100",
                         "--no-plots", "--no-progress", "--out", {str(system_dir)!r}])
        rc = rc or main(["evaluate", "--checkpoint", {str(system_dir)!r}, "--n", "50",
                         "--json"])
        sys.exit(rc)
    """)
    paths = [str(target), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
        env=env,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    from gankernels.train.checkpoint import load_checkpoint

    assert f"dist: {DIST}" in out
    assert f"{NAME}  ({DIST}, critic: score)" in out
    assert "    a tiny third-party hinge GAN" in out
    assert "defaults: n_critic=2, adam lr_critic=0.001 lr_generator=0.001" in out
    assert "\ngan  (gankernels" in out  # the built-in ones are still there
    assert f"translate  ({DIST}, system, needs pairs)" in out
    # the README's System trained two steps, and `evaluate` reports its own metric
    system = load_checkpoint(str(system_dir / "checkpoint.pt"))
    assert system["step"] == 2 and set(system["networks"]) == {"encoder", "decoder", "critic"}
    assert set(system["optimizers"]) == {"translator", "critic"}
    assert math.isfinite(json.loads(out.strip().splitlines()[-1])["l1"])

    ckpt = load_checkpoint(str(run_dir / "checkpoint.pt"))
    assert ckpt["step"] == 1
    assert ckpt["config"]["variant"] == NAME
    # One generator step is n_critic = 2 critic steps, each followed by the plugin's hook.
    state = ckpt["variant_state"]
    assert state["step"] == 2 and float(state["tiny_critic_steps"]) == 2.0
    with open(run_dir / "metrics.jsonl") as f:
        train = [r for r in map(json.loads, f) if r["kind"] == "train"]
    assert train and train[-1]["critic_tiny_marker"] == 1.0
    for key in ("loss_critic", "loss_generator"):
        assert math.isfinite(train[-1][key]), train[-1]
    # Nothing was installed into the environment running the tests.
    assert _pip("show", "-q", DIST).returncode != 0
