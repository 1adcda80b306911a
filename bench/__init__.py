"""The gankernels benchmark suite (`pytest bench/`): fused kernels against eager PyTorch and
torch.compile. A package so its modules never clash with the test modules in tests/."""
