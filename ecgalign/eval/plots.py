"""Figures for the HTML report, returned as PNG bytes: embeddings by t-SNE, LDA and (when ``umap-learn`` is
installed) UMAP, coloured by class; per-class ROC curves. matplotlib runs headless (Agg)."""

from __future__ import annotations

import io

import numpy as np


def _figure(width: float = 5.0, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=110)


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def single_label_view(y: np.ndarray, classes: list[str], max_classes: int = 8) -> tuple[np.ndarray, list[str]]:
    """Rows that carry exactly one of the ``max_classes`` most frequent classes, and that class's name per row
    (multi-label records would otherwise need several colours)."""
    top = np.argsort(-y.sum(axis=0))[:max_classes]
    sub = y[:, top]
    keep = np.flatnonzero((sub.sum(axis=1) == 1) & (y.sum(axis=1) == 1))
    names = [classes[top[int(np.argmax(sub[i]))]] for i in keep]
    return keep, names


def embedding_plot(x: np.ndarray, y: np.ndarray, classes: list[str], method: str = "tsne", seed: int = 0,
                   title: str = "") -> bytes | None:
    """2-D projection of the single-label records; None when fewer than 2 classes or 10 records remain."""
    keep, names = single_label_view(y, classes)
    if len(keep) < 10 or len(set(names)) < 2:
        return None
    z = x[keep]
    z = (z - z.mean(axis=0)) / (z.std(axis=0) + 1e-6)
    if method == "tsne":
        from sklearn.manifold import TSNE

        points = TSNE(n_components=2, perplexity=min(30.0, (len(keep) - 1) / 3), random_state=seed,
                      init="pca").fit_transform(z)
    elif method == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        labels = np.array(names)
        n = min(2, len(set(names)) - 1)
        points = LinearDiscriminantAnalysis(n_components=n, solver="eigen", shrinkage="auto").fit_transform(z, labels)
        if n == 1:
            points = np.column_stack([points[:, 0], np.random.default_rng(seed).normal(0, 0.05, len(points))])
    elif method == "umap":
        try:
            import umap
        except ImportError:
            return None  # optional extra: pip install umap-learn
        points = umap.UMAP(random_state=seed).fit_transform(z)
    else:
        raise ValueError(f"unknown projection {method!r}; expected tsne, lda or umap")
    plt, fig = _figure()
    ax = fig.add_subplot(111)
    for name in sorted(set(names)):
        sel = np.array([n == name for n in names])
        ax.scatter(points[sel, 0], points[sel, 1], s=8, alpha=0.7, label=f"{name} ({int(sel.sum())})")
    ax.legend(fontsize=7, markerscale=2)
    ax.set_title(title or method.upper(), fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(plt, fig)


def roc_plot(y: np.ndarray, scores: np.ndarray, classes: list[str], title: str = "") -> bytes | None:
    from sklearn.metrics import roc_auc_score, roc_curve

    plt, fig = _figure()
    ax = fig.add_subplot(111)
    drawn = 0
    for j, name in enumerate(classes):
        if 0 < y[:, j].sum() < len(y):
            fpr, tpr, _ = roc_curve(y[:, j], scores[:, j])
            ax.plot(fpr, tpr, lw=1.2, label=f"{name} {roc_auc_score(y[:, j], scores[:, j]):.3f}")
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=6, loc="lower right", ncol=1 if drawn <= 12 else 2)
    ax.set_title(title, fontsize=9)
    return _png(plt, fig)
