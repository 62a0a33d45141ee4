"""The one way sepspec draws a picture: matplotlib without a screen (Agg), a figure rendered to PNG bytes and
written whole or not at all. Needs matplotlib (the `tf` extra); imported only where a picture is drawn."""

from __future__ import annotations

import io

from . import atomic

DPI = 90


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> bytes:
    """The figure as PNG bytes (laid out tightly), and closed."""
    plt = pyplot()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def save_figure(fig, path: str) -> None:
    """Write the figure to `path` as PNG, atomically."""
    atomic.write(path, png(fig))
