"""The built-in GAN variants of gankernels, installed as the package `gankernels_plugins`.

Each module holds module-level `Variant` objects that gankernels' pyproject.toml registers in the
entry-point group `gankernels.variants`, exactly as a third-party package registers its own. Use
them through `gankernels.variants.get(name)`.
"""
