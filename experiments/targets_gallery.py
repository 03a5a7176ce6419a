"""A gallery of every built-in target: 4000 samples of each, drawn as training draws them.

    PYTHONPATH=. python experiments/targets_gallery.py --out docs/figures/targets.png

One panel per registered built-in target (gan_jax.components.data.TARGETS, in registration
order), with its name, its dimension and whether it has modes (the mode metrics apply only
there); a 1-D target is drawn as a histogram, the modes of a mixture as crosses. A target of more
than 2 dimensions with modes (the 1200-D `veegan_1200d`) is drawn projected onto the two leading
principal axes of its modes' means, where its modes separate (two of its coordinates would show
nothing of it). Samples come from `target.sample(jax.random.key(0), 4000)`, the call training
makes.
"""

from __future__ import annotations

import math

import jax
import numpy as np

import gan_jax  # noqa: F401  (every built-in target is registered on import)
from gan_jax.commands import cli
from gan_jax.components import data
from gan_jax.core import registry

SAMPLES = 4000


def builtin_targets() -> list[str]:
    return [n for n in data.TARGETS if registry.KINDS["target"].entries[n].builtin]


def mean_axes(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, f64[D, 2]): the modes' mean, and the two leading principal axes of the
    centred means (their first two right singular vectors)."""
    centre = means.mean(axis=0)
    return centre, np.linalg.svd(means - centre, full_matrices=False)[2][:2].T


def draw(out: str, samples: int = SAMPLES) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = builtin_targets()
    cols = 5
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.1 * rows))
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        target = data.preset(name).build()
        x = np.asarray(target.sample(jax.random.key(0), samples))
        modes = data.has_modes(target)
        if target.dim == 1:
            ax.hist(x[:, 0], bins=120, density=True, color="tab:blue")
            ax.set_yticks([])
        else:
            mu, projected = (target.means if modes else None), target.dim > 2
            if projected:
                centre, axes2 = mean_axes(np.asarray(target.means))
                x, mu = (x - centre) @ axes2, (mu - centre) @ axes2
            ax.scatter(x[:, 0], x[:, 1], s=1.0, alpha=0.35, color="tab:blue", linewidths=0)
            if modes:
                ax.scatter(mu[:, 0], mu[:, 1], marker="x", s=18, color="tab:red",
                           linewidths=0.8)
            if projected:
                ax.set_xlabel("the means' principal axis 1", fontsize=8)
                ax.set_ylabel("principal axis 2", fontsize=8)
            lim = float(np.max(np.abs(x))) * 1.05
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
        kind = f"{target.num_modes} modes" if modes else "no modes"
        view = " (projected)" if target.dim > 2 else ""
        ax.set_title(f"{name}\n{target.dim}-D, {kind}{view}", fontsize=10)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Built-in targets, {samples} samples each (red crosses: modes)", fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main():
    def add(parser):
        parser.add_argument("--out", default="docs/figures/targets.png")
        parser.add_argument("--samples", type=int, default=SAMPLES)

    cli.run_script(__doc__, add, lambda args: print(draw(args.out, args.samples)) or 0)


if __name__ == "__main__":
    main()
