"""The receptive field against the image (`sepspec show SPEC --plot rf.png`): receptive field and jump per layer,
in the Report's order, with the image's side marked and the layers SEP217 calls unproductive. matplotlib is
imported only here, when a picture is asked for (the `tf` extra brings it)."""

from __future__ import annotations

from .analysis import Report


def rf_plot(rep: Report, title: str, unproductive: set[str] = frozenset()) -> bytes:
    """A PNG of receptive field (left axis) and jump (right axis) per layer; `unproductive` names layers to mark."""
    import matplotlib.ticker

    from ..figures import png, pyplot

    plt = pyplot()

    rows = [r for r in rep.rows if len(r.output) == 3]  # spatial layers: what a receptive field is of
    x = list(range(1, len(rows) + 1))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.12 * len(rows)), 4.5))
    for axis, style in ((0, "-"), (1, "--")):
        if axis == 1 and all(r.rf[0] == r.rf[1] for r in rows):
            break  # square: one line says it
        ax.plot(x, [r.rf[axis] for r in rows], style, color="tab:blue", marker=".",
                label="receptive field" + ("" if axis == 0 and all(r.rf[0] == r.rf[1] for r in rows) else
                                           (" (height)" if axis == 0 else " (width)")))
    h, w = rep.spec.input[:2]
    ax.axhline(h, color="tab:gray", linestyle=":", label=f"image side ({h})")
    if w != h:
        ax.axhline(w, color="tab:gray", linestyle="-.", label=f"image width ({w})")
    ratio = rep.spec.rules.unproductive_ratio
    if ratio is not None:
        ax.axhline(ratio * min(h, w), color="tab:red", linestyle=":", alpha=0.6,
                   label=f"{ratio:g} x the image: a window's input beyond this is unproductive")
    marked = [(i, r) for i, r in zip(x, rows) if r.name in unproductive]
    if marked:
        ax.scatter([i for i, _ in marked], [r.rf[0] for _, r in marked], color="tab:red", zorder=3,
                   label="unproductive (SEP217)")
    ax.set_xlabel("layer (in the order of `sepspec show`; spatial layers only)")
    ax.set_ylabel("receptive field, pixels")
    jump = ax.twinx()
    jump.step(x, [r.jump[0] for r in rows], where="mid", color="tab:orange", alpha=0.7, label="jump")
    jump.set_ylabel("jump (input pixels between neighbours)")
    jump.set_ylim(0, 1.15 * max(r.jump[0] for r in rows))
    jump.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = jump.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return png(fig)
