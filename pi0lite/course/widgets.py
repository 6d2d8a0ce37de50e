"""Interactive explorers for the notebooks (ipywidgets, imported lazily).

``mask_explorer`` shows one row of toggle buttons for the ``ar_mask`` flags and one for the
``input_mask`` flags of a short token sequence, and redraws the attention mask whenever a
button changes. ``model_mask_explorer`` adds a model menu (e.g. pi0 / pi0.5 / pi0-FAST) that swaps
in each model's token layout. Only core ipywidgets (ToggleButton, Dropdown, HBox, VBox, Label,
Output) are used, so both work with ipywidgets 7.7 (Colab) and 8.

Axis letters: n tokens.
"""

from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import ArrayLike, Bool

from pi0lite.masks import make_attn_mask

__all__ = ["MaskExplorer", "ModelMaskExplorer", "mask_explorer", "model_mask_explorer"]


class MaskExplorer:
    """Toggle ar/padding flags, watch the mask change. Display it as the last line of a cell."""

    def __init__(
        self,
        ar_mask: Bool[ArrayLike, " n"],
        input_mask: Bool[ArrayLike, " n"] | None = None,
        *,
        labels: Sequence[str] | None = None,
        segments: Sequence[tuple[str, int]] | None = None,
    ):
        import ipywidgets as widgets  # lazy: the package works without a notebook front end

        ar_mask = np.asarray(ar_mask, bool)
        n = ar_mask.shape[0]
        input_mask = np.ones(n, bool) if input_mask is None else np.asarray(input_mask, bool)
        if ar_mask.ndim != 1 or input_mask.shape != (n,):
            raise ValueError(f"ar_mask and input_mask must both be [n], got {ar_mask.shape} and {input_mask.shape}")
        labels = [str(i) for i in range(n)] if labels is None else list(labels)
        if len(labels) != n:
            raise ValueError(f"labels must have {n} entries (one per token), got {len(labels)}")
        self.segments = segments
        layout = widgets.Layout(width="46px", padding="0px")
        self.ar_buttons = [widgets.ToggleButton(value=bool(a), description=lab, layout=layout,
                                                tooltip=f"ar_mask[{i}]") for i, (a, lab) in enumerate(zip(ar_mask, labels))]
        self.valid_buttons = [widgets.ToggleButton(value=bool(v), description=lab, layout=layout,
                                                   tooltip=f"input_mask[{i}]") for i, (v, lab) in enumerate(zip(input_mask, labels))]
        self.output = widgets.Output()
        for button in self.ar_buttons + self.valid_buttons:
            button.observe(self._redraw, names="value")
        label = widgets.Layout(width="160px")  # 110 px cut "ar_mask (opens block)" in JupyterLab
        self.widget = widgets.VBox([
            widgets.HBox([widgets.Label("ar_mask (opens block)", layout=label), *self.ar_buttons]),
            widgets.HBox([widgets.Label("input_mask (valid)", layout=label), *self.valid_buttons]),
            self.output,
        ])
        self._redraw()

    @property
    def ar_mask(self) -> np.ndarray:
        return np.array([b.value for b in self.ar_buttons], bool)

    @property
    def input_mask(self) -> np.ndarray:
        return np.array([b.value for b in self.valid_buttons], bool)

    @property
    def mask(self) -> np.ndarray:
        """The current ``[n, n]`` attention mask."""
        return np.asarray(make_attn_mask(self.input_mask[None], self.ar_mask))[0]

    def figure(self):
        """A new matplotlib Figure with the current mask (no pyplot global state involved)."""
        from matplotlib.figure import Figure

        from pi0lite.course.viz.masks import plot_attn_mask

        fig = Figure(figsize=(4.2, 4.2))
        ax = fig.add_subplot()
        block = np.cumsum(self.ar_mask).tolist()
        plot_attn_mask(self.mask, segments=self.segments, ax=ax, title=f"block ids (cumsum): {block}")
        ax.title.set_fontsize(8)
        fig.tight_layout()
        return fig

    def _redraw(self, *_):
        from IPython.display import display

        self.output.clear_output(wait=True)
        with self.output:
            display(self.figure())

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def mask_explorer(ar_mask, input_mask=None, *, labels=None, segments=None) -> MaskExplorer:
    """Build a :class:`MaskExplorer` (see the class docstring)."""
    return MaskExplorer(ar_mask, input_mask, labels=labels, segments=segments)


def _token_labels(segments: Sequence[tuple[str, int]]) -> list[str]:
    """Short button labels: the segment's first letter, plus the index inside it when it has several tokens."""
    return [name[0] + (str(i) if size > 1 else "") for name, size in segments for i in range(size)]


class ModelMaskExplorer:
    """A model menu above a :class:`MaskExplorer`; choosing a model loads its token layout."""

    def __init__(self, layouts: Mapping[str, tuple[Sequence[tuple[str, int]], ArrayLike, ArrayLike]]):
        import ipywidgets as widgets

        if not layouts:
            raise ValueError("layouts must name at least one model: {name: (segments, ar_mask, input_mask)}")
        for name, (segments, ar_mask, _) in layouts.items():
            if sum(size for _, size in segments) != len(ar_mask):
                raise ValueError(f"layouts[{name!r}]: segments cover {sum(s for _, s in segments)} tokens, ar_mask has {len(ar_mask)}")
        self.layouts = dict(layouts)
        self.model = widgets.Dropdown(options=list(self.layouts), description="model")
        self.model.observe(self._load, names="value")
        self.widget = widgets.VBox([self.model])
        self._load()

    def _load(self, *_):
        segments, ar_mask, input_mask = self.layouts[self.model.value]
        self.explorer = MaskExplorer(ar_mask, input_mask, labels=_token_labels(segments), segments=segments)
        self.widget.children = (self.model, self.explorer.widget)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def model_mask_explorer(layouts) -> ModelMaskExplorer:
    """Build a :class:`ModelMaskExplorer` from ``{model name: (segments, ar_mask, input_mask)}``."""
    return ModelMaskExplorer(layouts)
