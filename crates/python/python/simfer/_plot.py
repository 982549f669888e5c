"""The pairplot: SVG drawn by simfer's Rust core, and a matplotlib figure when matplotlib
is installed."""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np

from . import _simfer


class SvgFigure:
    """A pairplot as SVG text, returned by :func:`pairplot` when matplotlib is not
    installed. ``savefig(path)`` writes it (as a matplotlib figure's would), and notebooks
    show it inline."""

    def __init__(self, svg: str):
        self.svg = svg

    def savefig(self, fname: "str | os.PathLike[str]", **kwargs: Any) -> None:
        """Writes the SVG to ``fname`` (other keyword arguments are accepted and ignored)."""
        with open(fname, "w", encoding="utf-8") as f:
            f.write(self.svg)

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"SvgFigure({len(self.svg)} characters of SVG)"


def _as_sets(samples: Any) -> list:
    if isinstance(samples, (list, tuple)):
        return [np.asarray(s, dtype=float) for s in samples]
    return [np.asarray(samples, dtype=float)]


def pairplot(
    samples: Any,
    points: Any = None,
    limits: Any = None,
    subset: Optional[Sequence[int]] = None,
    upper: str = "hist",
    diag: str = "hist",
    figsize: Sequence[float] = (10, 10),
    labels: Optional[Sequence[str]] = None,
    *,
    path: "Optional[str | os.PathLike[str]]" = None,
    lower: Any = None,
    ticks: Any = None,
    offdiag: Any = None,
    fig: Any = None,
    axes: Any = None,
):
    """Plots samples in a grid of their 1-D marginals (diagonal) and 2-D marginals (upper
    triangle), as the reference's ``pairplot``.

    ``samples``: an ``(n, d)`` array-like or a list of them; ``points``: ``(m, d)`` or one
    vector, marked in every panel; ``limits``: ``[low, high]`` for every dimension or one
    pair per dimension; ``subset``: the dimensions to show; ``upper``: ``"hist"``,
    ``"kde"`` or ``"contour"``; ``diag``: ``"hist"`` or ``"kde"``; ``figsize`` in inches.

    The SVG is drawn by simfer and written to ``path`` when given. Returns ``(fig, axes)``:
    a matplotlib figure and its axes when matplotlib is installed (its 2-D panels are
    histograms whatever ``upper`` is), else an :class:`SvgFigure` and ``None``.
    """
    if offdiag is not None and upper == "hist":
        upper = offdiag
    for name, value in (("lower", lower), ("ticks", ticks), ("fig", fig), ("axes", axes)):
        if value is not None:
            raise NotImplementedError(f"pairplot: `{name}` is not supported by simfer")
    sets = _as_sets(samples)
    lim = None if limits is None else np.asarray(limits, dtype=float)
    pts = None if points is None else np.atleast_2d(np.asarray(points, dtype=float))
    svg = _simfer._pairplot_svg(
        sets if len(sets) > 1 else sets[0],
        points=pts,
        limits=lim,
        subset=None if subset is None else list(subset),
        labels=None if labels is None else list(labels),
        diag=diag,
        upper=upper,
        figsize=(float(figsize[0]), float(figsize[1])),
    )
    if path is not None:
        SvgFigure(svg).savefig(path)
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return SvgFigure(svg), None
    return _matplotlib(sets, pts, lim, subset, labels, figsize, plt)


def _matplotlib(sets, points, limits, subset, labels, figsize, plt):
    d = sets[0].shape[1]
    dims = list(range(d)) if subset is None else list(subset)
    k = len(dims)
    if limits is None:
        stacked = np.concatenate([s[:, dims] for s in sets], axis=0)
        lo, hi = stacked.min(axis=0), stacked.max(axis=0)
        pad = 0.1 * np.where(hi > lo, hi - lo, 1.0)
        lims = np.stack([lo - pad, hi + pad], axis=1)
    elif limits.ndim == 1:
        lims = np.tile(limits, (k, 1))
    else:
        lims = limits[dims]
    names = [f"θ{i + 1}" for i in dims] if labels is None else [labels[i] for i in dims]
    fig, axes = plt.subplots(k, k, figsize=tuple(figsize), squeeze=False)
    for r in range(k):
        for c in range(k):
            ax = axes[r, c]
            if c < r:
                ax.axis("off")
                continue
            for s in sets:
                if r == c:
                    ax.hist(s[:, dims[r]], bins=50, range=tuple(lims[r]), histtype="step")
                else:
                    h, xe, ye = np.histogram2d(
                        s[:, dims[c]], s[:, dims[r]], bins=50,
                        range=[tuple(lims[c]), tuple(lims[r])],
                    )
                    ax.imshow(h.T, origin="lower", aspect="auto",
                              extent=(xe[0], xe[-1], ye[0], ye[-1]))
            if points is not None:
                for p in points:
                    if r == c:
                        ax.axvline(p[dims[r]], color="C1")
                    else:
                        ax.plot(p[dims[c]], p[dims[r]], "o", color="C1")
            ax.set_xlim(lims[c])
            if r != c:
                ax.set_ylim(lims[r])
            else:
                ax.set_yticks([])
            if r == c:
                ax.set_xlabel(names[r])
    fig.tight_layout()
    return fig, axes
