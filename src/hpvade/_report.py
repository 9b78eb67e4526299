"""A self-contained HTML report of one deconvolution (``hpvade deconvolve --report``).

One file, no external resources: the figures are base64 PNGs in ``<img>`` tags and the
style is inline, so the page can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    import pandas as pd
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

_PACKAGES = (
    "hpvade",
    "scvi-tools",
    "torch",
    "lightning",
    "anndata",
    "numpy",
    "pandas",
    "scipy",
    "matplotlib",
)
_DPI = 110
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; }
th { background: #f5f5f5; }
td.k, th.k { text-align: left; }
.scroll { max-height: 32em; overflow: auto; }
ul.notes li { margin: 0.2em 0; }
"""


def package_versions() -> dict[str, str]:
    """Python, the platform and the versions of hpvade and the packages it runs on."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _png(fig: Figure) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(title: str, caption: str, draw) -> str:
    """A ``<figure>`` with the PNG of ``draw()``, or a line saying why it is missing."""
    try:
        data = _png(draw())
    except (ValueError, KeyError, TypeError) as err:
        logger.warning("Report: no %s figure (%s)", title, err)
        return f"<p>No {html.escape(title)} figure: {html.escape(str(err))}</p>"
    return (
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _key_value_table(items: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th class="k">{html.escape(str(k))}</th>'
        f'<td class="k">{html.escape(str(v))}</td></tr>'
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def _has_history(model: Any) -> bool:
    history = getattr(model, "history_", None)
    return bool(history) and any(len(v) for v in history.values())


def write_report(
    path: str | Path,
    *,
    props: pd.DataFrame,
    model: Any,
    inputs: Mapping[str, Any],
    notes: Sequence[str] = (),
    evaluation: pd.DataFrame | None = None,
    summary: str | None = None,
    intervals: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> None:
    """Write the HTML report of one deconvolution.

    Parameters
    ----------
    path
        The ``.html`` file to write.
    props
        Proportions, samples x cell types.
    model
        The trained :class:`~hpvade.HPVADE` (its training history is plotted when it has
        one; a model loaded without history gets a line saying so).
    inputs
        What went in (files, options, sizes), shown as a table.
    notes
        Sentences about how the inputs were read (orientation, gene IDs, ...).
    evaluation
        Per-type agreement with measured fractions, if the bulk had them.
    summary
        One line under the title (e.g. the overall agreement).
    intervals
        Lower and upper ends of each proportion (``get_proportions(..., quantiles=(0.05,
        0.95))``: ``obsm[key + "_q05"]``, ``obsm[key + "_q95"]``), drawn as whiskers on
        the bars.
    """
    import anndata as ad
    import pandas as pd

    import hpvade

    bars = props
    if intervals is not None:
        # pl.proportions reads the intervals from obsm, beside the proportions
        key = "hpvade_proportions"
        bars = ad.AnnData(
            obs=pd.DataFrame(index=props.index.astype(str)),
            obsm={key: props, f"{key}_q05": intervals[0], f"{key}_q95": intervals[1]},
        )
    n_samples, n_types = props.shape
    many = n_samples > 40
    # sizes that read at the page's width (about 1000 px at 110 dpi) whatever the counts
    bar_size = (min(max(6.0, 0.28 * n_samples + 3), 11.0), 4.2)
    heat_size = (
        min(max(5.0, 0.9 * n_types + 3), 10.0),
        min(max(3.0, 0.22 * n_samples + 1.5), 9.0),
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>hpvade deconvolution report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>hpvade deconvolution report</h1>",
        f'<p class="sub">{n_samples} samples, {n_types} cell types. Written '
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by hpvade "
        f"{html.escape(package_versions()['hpvade'])}.</p>",
    ]
    if summary:
        parts.append(f"<p>{html.escape(summary)}</p>")
    if notes:
        parts.append("<h2>How the inputs were read</h2><ul class='notes'>")
        parts += [f"<li>{html.escape(n)}</li>" for n in notes]
        parts.append("</ul>")

    parts.append("<h2>Proportions</h2>")
    parts.append(
        _figure(
            "proportions",
            "Cell-type proportions of each sample (stacked bars; each bar sums to 1)."
            + (
                " Whiskers: the interval of each proportion, from its 5% to its 95% quantile."
                if intervals is not None
                else ""
            ),
            lambda: hpvade.pl.proportions(
                bars, kind="bar", figsize=bar_size, sample_labels=not many, return_fig=True
            ),
        )
    )
    parts.append(
        _figure(
            "heatmap",
            "The same proportions as a heatmap (rows: samples, columns: cell types).",
            lambda: hpvade.pl.proportions(
                props, kind="heatmap", figsize=heat_size, return_fig=True
            ),
        )
    )

    parts.append("<h2>Training history</h2>")
    if _has_history(model):
        parts.append(
            _figure(
                "training history",
                "Each loss term per epoch (train solid, validation dashed when there is one).",
                lambda: hpvade.pl.history(model, return_fig=True),
            )
        )
    else:
        parts.append("<p>The model was loaded without a training history: nothing to plot.</p>")

    parts.append("<h2>Table</h2>")
    parts.append(
        '<div class="scroll">'
        + props.round(4).to_html(border=0, float_format=lambda x: f"{x:.4f}")
        + "</div>"
    )
    if evaluation is not None and len(evaluation):
        parts.append("<h2>Against the measured fractions</h2>")
        parts.append(evaluation.round(3).to_html(border=0))

    parts.append("<h2>Inputs</h2>")
    parts.append(_key_value_table(inputs))
    parts.append("<h2>Versions</h2>")
    parts.append(_key_value_table(package_versions()))
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
