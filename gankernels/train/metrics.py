"""Sample-quality measures (docs/math.md section 7).

- modes / high-quality %: a sample is high quality when it lies within 3 std of its nearest
  mode centre; a mode is captured when at least one high-quality sample is nearest to it
  (VEEGAN, PacGAN; evaluated on 2,500 samples).
- MMD^2: unbiased estimate with a Gaussian kernel k(x, y) = exp(-||x - y||^2 / (2 h^2)), h the
  median pairwise distance of the pooled samples (the "median heuristic").
- sliced Wasserstein-1 distance over 50 random unit projections.
- precision / recall with k = 3 nearest-neighbour balls (Kynkaanniemi et al. 2019): precision
  is the fraction of generated samples inside the union of balls around the real samples
  (radius = distance to the k-th nearest real neighbour); recall swaps the roles.
- digits: a logistic-regression classifier trained once on the digits (cached) labels the
  samples; class coverage = classes predicted at least once, KL = KL(p_generated || p_data) of
  the label histograms.
- label accuracy (conditional models): the % of samples drawn for class y that are of class y:
  labelled y by the digits classifier, or for ring8 / grid25 high quality with mode y nearest.
"""

from __future__ import annotations

import os
from typing import Optional

import torch

from .data import TWO_DOMAIN_SETS, DataSet, digits_labels, digits_set

N_EVAL = 2500
HQ_STDS = 3.0


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.detach().reshape(x.shape[0], -1).double().cpu()


def modes_and_quality(
    samples: torch.Tensor, centres: torch.Tensor, std: float
) -> tuple[int, float]:
    """(modes captured, high-quality %) of `samples` [N, D] against mode `centres` [K, D]."""
    if samples.shape[0] == 0:
        raise ValueError("samples must hold at least one sample")
    dist = torch.cdist(_flat(samples), _flat(centres))
    nearest_dist, nearest = dist.min(1)
    hq = nearest_dist <= HQ_STDS * std
    modes = int(torch.unique(nearest[hq]).numel())
    return modes, 100.0 * float(hq.double().mean())


def _median_bandwidth(x: torch.Tensor, y: torch.Tensor) -> float:
    pooled = torch.cat([x, y])
    d = torch.pdist(pooled)
    h = float(d.median()) if d.numel() else 1.0
    return h if h > 0 else 1.0


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: Optional[float] = None) -> float:
    """Unbiased MMD^2 between samples x [N, ...] and y [M, ...], Gaussian kernel, bandwidth h
    (median pairwise distance of the pooled samples by default):

        MMD^2 = sum_{i!=j} k(x_i,x_j)/(N(N-1)) + sum_{i!=j} k(y_i,y_j)/(M(M-1))
                - 2 sum_{i,j} k(x_i,y_j)/(NM)
    """
    x, y = _flat(x), _flat(y)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd2 needs at least 2 samples on each side, got {n} and {m}")
    h = bandwidth if bandwidth is not None else _median_bandwidth(x, y)
    gamma = 1.0 / (2 * h * h)

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-gamma * torch.cdist(a, b).square())

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.mean())


def sliced_wasserstein(
    x: torch.Tensor, y: torch.Tensor, n_projections: int = 50, seed: int = 0
) -> float:
    """Mean over random unit directions u of W1(<x, u>, <y, u>), the 1-D Wasserstein-1 distance
    computed from quantiles (equal sample counts are subsampled to the smaller set)."""
    x, y = _flat(x), _flat(y)
    n = min(x.shape[0], y.shape[0])
    gen = torch.Generator().manual_seed(seed)
    x = x[torch.randperm(x.shape[0], generator=gen)[:n]]
    y = y[torch.randperm(y.shape[0], generator=gen)[:n]]
    u = torch.randn(x.shape[1], n_projections, generator=gen, dtype=torch.float64)
    u = u / u.norm(dim=0, keepdim=True)
    px, _ = (x @ u).sort(0)
    py, _ = (y @ u).sort(0)
    return float((px - py).abs().mean())


def _kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    # index 0 of the sorted row is the point itself (distance 0)
    return d.kthvalue(k + 1, dim=1).values


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi 2019) with k-NN balls, both in [0, 1]."""
    real, fake = _flat(real), _flat(fake)
    if real.shape[0] <= k or fake.shape[0] <= k:
        raise ValueError(f"precision_recall needs more than k={k} samples on each side")
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    d = torch.cdist(fake, real)  # [n_fake, n_real]
    precision = (d <= r_real.unsqueeze(0)).any(1).double().mean()
    recall = (d.t() <= r_fake.unsqueeze(0)).any(1).double().mean()
    return float(precision), float(recall)


# --- digits -----------------------------------------------------------------------------------


def _cache_dir() -> str:
    root = os.environ.get("GANKERNELS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gankernels"
    )
    return root


def digits_classifier(cache_dir: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [10, 64], bias [10]) of a logistic regression trained on all of sklearn's digits
    scaled to [-1, 1]; trained once and cached as tensors (loaded with weights_only=True)."""
    path = os.path.join(cache_dir or _cache_dir(), "digits_logreg.pt")
    if os.path.isfile(path):
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            return saved["weight"], saved["bias"]
        except Exception:  # a corrupt cache is rebuilt rather than trusted
            pass
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = digits_set().data.reshape(-1, 64).numpy()
    y = digits_labels().numpy()
    # One BLAS thread: a 1797 x 64 fit takes half a second that way, while a BLAS pool spinning
    # against other processes on a small machine turns it into tens of seconds.
    with threadpool_limits(1):
        clf = LogisticRegression(max_iter=1000).fit(x, y)
    weight = torch.from_numpy(clf.coef_).float()
    bias = torch.from_numpy(clf.intercept_).float()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save({"weight": weight, "bias": bias}, tmp)
    os.replace(tmp, path)
    return weight, bias


def digit_labels_of(samples: torch.Tensor, cache_dir: Optional[str] = None) -> torch.Tensor:
    weight, bias = digits_classifier(cache_dir)
    flat = samples.detach().reshape(samples.shape[0], -1).float().cpu()
    if flat.shape[1] != weight.shape[1]:
        raise ValueError(f"digit samples must have 64 pixels each, got {flat.shape[1]}")
    return (flat @ weight.t() + bias).argmax(1)


def digits_coverage_kl(samples: torch.Tensor, cache_dir: Optional[str] = None) -> tuple[int, float]:
    """(classes predicted at least once, KL(p_generated || p_data)) of the label histograms."""
    pred = digit_labels_of(samples, cache_dir)
    p = torch.bincount(pred, minlength=10).double()
    p = p / p.sum()
    q = torch.bincount(digits_labels(), minlength=10).double()
    q = q / q.sum()
    mask = p > 0
    kl = float((p[mask] * (p[mask] / q[mask]).log()).sum())
    return int(mask.sum()), kl


def is_digits(dataset: DataSet) -> bool:
    """Whether the digits classifier applies to `dataset`'s samples (the digits, or domain A of
    a two-domain set built on them)."""
    return dataset.name in ("digits", *TWO_DOMAIN_SETS) and dataset.kind == "images"


def label_accuracy(samples: torch.Tensor, labels: torch.Tensor, dataset: DataSet) -> float:
    """The % of `samples` of class `labels` (see the module docstring); ValueError for a data
    set that has no way to tell a sample's class."""
    if samples.shape[0] != labels.shape[0] or samples.shape[0] == 0:
        raise ValueError(
            f"label_accuracy needs one label per sample, got {samples.shape[0]} samples and "
            f"{labels.shape[0]} labels"
        )
    labels = labels.cpu()
    if is_digits(dataset):
        correct = digit_labels_of(samples) == labels
    elif dataset.centres is not None and dataset.std is not None:
        dist = torch.cdist(_flat(samples), _flat(dataset.centres))
        nearest_dist, nearest = dist.min(1)
        correct = (nearest == labels) & (nearest_dist <= HQ_STDS * dataset.std)
    else:
        raise ValueError(f"label_accuracy: no class can be told for samples of {dataset.name!r}")
    return 100.0 * float(correct.double().mean())


# --- everything for one data set --------------------------------------------------------------


def evaluate_samples(
    samples: torch.Tensor,
    dataset: DataSet,
    reference: Optional[torch.Tensor] = None,
    cache_dir: Optional[str] = None,
    max_pairs: int = N_EVAL,
) -> dict[str, float]:
    """Every metric that applies to `dataset`, for generated `samples`.

    `reference` is the real sample the distribution metrics compare against (default: the
    first `max_pairs` rows of the data set); at most `max_pairs` rows of each side are used
    for MMD^2 and precision/recall, whose cost grows with the square of the sample count.
    """
    if not torch.isfinite(samples).all():
        raise ValueError("evaluate: the generated samples contain NaN or Inf")
    real = reference if reference is not None else dataset.data[:max_pairs]
    out: dict[str, float] = {}
    if dataset.centres is not None and dataset.std is not None:
        modes, hq = modes_and_quality(samples, dataset.centres, dataset.std)
        out["modes"] = modes
        out["n_modes"] = int(dataset.centres.shape[0])
        out["hq"] = hq
    a, b = samples[:max_pairs], real[:max_pairs]
    out["mmd2"] = mmd2(a, b)
    out["swd"] = sliced_wasserstein(a, b)
    out["precision"], out["recall"] = precision_recall(b, a)
    if is_digits(dataset):
        out["classes"], out["label_kl"] = digits_coverage_kl(samples, cache_dir)
    return out


_FORMATTED = ("modes", "n_modes", "hq", "mmd2", "swd", "precision", "recall", "classes", "label_kl")


def format_metrics(m: dict[str, float]) -> str:
    """One line, e.g. `modes 25/25  hq 93.1%  mmd2 0.0012  ...`."""
    parts = []
    if "modes" in m:
        parts.append(f"modes {m['modes']}/{m['n_modes']}")
        parts.append(f"hq {m['hq']:.1f}%")
    for key in ("mmd2", "swd", "precision", "recall"):
        if key in m:
            parts.append(f"{key} {m[key]:.4g}")
    if "classes" in m:
        parts.append(f"classes {m['classes']}/10")
        parts.append(f"label_kl {m['label_kl']:.3f}")
    for key, value in m.items():
        # Metrics a System adds (label accuracy, reconstruction error, ...).
        if key not in _FORMATTED:
            parts.append(f"{key} {value:.4g}")
    return "  ".join(parts)
