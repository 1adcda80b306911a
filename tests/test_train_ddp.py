"""Two processes under torchrun on the CPU (gloo): they train on different shards and end with
identical parameters; only rank 0 logs and checkpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    torch.set_num_threads(1)
    from gankernels.train import TrainConfig, Trainer

    out = sys.argv[1]
    trainer = Trainer(TrainConfig(variant="wgan-gp", data="ring8", out=out, steps=6,
                                  batch_size=16, hidden=16, depth=2, impl="ref", n_eval=100,
                                  progress=False, plots=False, verbose=False, log_every=2,
                                  ckpt_every=3))
    assert torch.distributed.is_initialized() and torch.distributed.get_world_size() == 2
    initial = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.run()
    rank = torch.distributed.get_rank()
    torch.save({"generator": trainer.generator.state_dict(),
                "critic": trainer.critic.state_dict(),
                "initial": initial,
                "first_rows": trainer.shard[:4].cpu(),
                "critic_steps": int(trainer.state["step"])},
               os.path.join(out, f"rank{rank}.pt"))
    trainer.close()
""")


SYSTEM_SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    torch.set_num_threads(1)
    from gankernels.train import TrainConfig
    from gankernels.train.trainer import make_trainer

    out = sys.argv[1]
    trainer = make_trainer(TrainConfig(variant="cgan", data="ring8", out=out, steps=4,
                                       batch_size=16, hidden=16, depth=2, impl="ref",
                                       n_eval=100, progress=False, plots=False, verbose=False,
                                       log_every=2, ckpt_every=2))
    initial = {k: v.detach().clone() for k, v in trainer.nets["critic"].state_dict().items()}
    trainer.run()
    rank = torch.distributed.get_rank()
    torch.save({"networks": {k: v.state_dict() for k, v in trainer.nets.items()},
                "initial": initial,
                "labels": trainer.shard_set.labels[:8].cpu(),
                "critic_steps": int(trainer.state["step"])},
               os.path.join(out, f"rank{rank}.pt"))
    trainer.close()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path, text: str):
    """Run `text` as a script on two CPU processes; the directory it was given."""
    script = tmp_path / "run.py"
    script.write_text(text)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(script),
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out


needs_gloo = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with gloo is not available in this torch build",
)


@needs_gloo
def test_two_processes_agree(tmp_path):
    out = _torchrun(tmp_path, SCRIPT)
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    for part in ("generator", "critic"):
        for name, p in r0[part].items():
            assert torch.equal(p, r1[part][name]), f"{part}.{name} differs between the ranks"
    # the run trained (parameters moved) on different shards of the data
    final = list(r0["generator"].values())
    moved = [not torch.equal(a, final[i]) for i, a in enumerate(r0["initial"])]
    assert any(moved)
    assert not torch.equal(r0["first_rows"], r1["first_rows"])
    assert r0["critic_steps"] == r1["critic_steps"] == 6 * 5

    # rank 0 alone wrote the log and the checkpoint, which holds both ranks' random states
    with open(out / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f if '"train"' in line]
    assert steps == sorted(set(steps)) and steps[-1] == 6
    from gankernels.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(str(out))
    assert ckpt["step"] == 6 and ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    for name, p in ckpt["generator"].items():
        assert torch.equal(p, r0["generator"][name])


@needs_gloo
def test_a_system_trains_on_two_processes(tmp_path):
    """A System is not wrapped in DDP: its `update` averages the gradients itself. The ranks
    draw different rows (their labels differ), yet end with the same networks."""
    out = _torchrun(tmp_path, SYSTEM_SCRIPT)
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert not torch.equal(r0["labels"], r1["labels"])
    for net, weights in r0["networks"].items():
        for name, p in weights.items():
            assert torch.equal(p, r1["networks"][net][name]), f"{net}.{name} differs"
    moved = [not torch.equal(p, r0["networks"]["critic"][k]) for k, p in r0["initial"].items()]
    assert any(moved)
    assert r0["critic_steps"] == r1["critic_steps"] == 4 * 5
