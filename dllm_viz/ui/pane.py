"""A pane, built the same way by every tab: :class:`StrategyPane` owns one strategy's controls
(the picker, a control per parameter, the policy upload) and :class:`TracePane` the views of one
decode (token grid, stats, step × position heatmap), each registered by name in the tab's
:class:`~.updates.Components`.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal, cast

import gradio as gr
from gradio.data_classes import GradioDataModel

from ..strategies import Param, StrategySpec
from ..views import heatmap_figure, render_grid, stats_html
from ..views.glossary import INFO
from . import allowed_models, picker
from .errors import public_message, shown, user_errors
from .settings import CONTROLS, PANE_FIELDS, control_name, engine_config, prepare_uploaded_policy, public_name
from .updates import Components

Visibility = bool | Literal["hidden"]  # "hidden": mounted in the page but not displayed


def model_picker(elem_id: str, **kwargs: Any) -> gr.Dropdown:
    """The model dropdown every tab starts with: the installed and GPU models, a typed folder or id allowed."""
    return gr.Dropdown(
        allowed_models.model_choices(),
        value=allowed_models.default_model(),
        label="Model",
        allow_custom_value=True,
        elem_id=elem_id,
        **kwargs,
    )


def checked_file(**kwargs: Any) -> gr.File:
    """A ``gr.File`` input whose API value, when it is not an uploaded file, gets a message naming
    the input. Gradio checks an input against the component's data model before any handler runs
    (even with ``preprocess=False``), and its pydantic error reaches a client as the generic
    "upstream … raised an exception". Uploads are checked exactly as before (the same model)."""
    component = gr.File(**kwargs)
    assert component.data_model is not None  # gr.File always has one
    component.data_model = _refusing(component.data_model, component.label or "the file")
    return component


@functools.cache
def _refusing(model: type[GradioDataModel], label: str) -> type[GradioDataModel]:
    """``model`` (Gradio's FileData or ListFiles) under its own name and schema (the API page
    shows them), refusing what is not an upload with a message naming ``label``."""

    def model_validate(cls: type, obj: object, *args: Any, **kwargs: Any) -> GradioDataModel:
        try:
            return model.model_validate(obj, *args, **kwargs)
        except ValueError:  # pydantic's ValidationError
            message = f"{label}: send an uploaded file (gradio_client.handle_file(path)), not {shown(obj)}"
            raise gr.Error(public_message(message), duration=12) from None

    return cast(
        "type[GradioDataModel]", type(model.__name__, (model,), {"model_validate": classmethod(model_validate)})
    )


# ---- one strategy's controls ---------------------------------------------------------------------


def control_value(param: Param, spec: StrategySpec, defaults: dict | None = None) -> object:
    value = spec.params.get(param.name, (defaults or {}).get(param.name, param.default))
    return 0 if value is None and param.optional else value  # an optional number box shows 0 for None


def pane_values(spec: StrategySpec) -> tuple:
    """(strategy, *controls) values showing ``spec``; controls it does not set show its policy's
    validated τ_π and β (see :func:`~.picker.policy_defaults`), else the strategy's defaults."""
    defaults = picker.policy_defaults(spec)
    return (picker.choice_of(spec), *(control_value(p, spec, defaults) for p in CONTROLS))


def knobs_js() -> str:
    """A browser-side handler for a user's pick: a shipped policy's validated τ_π and β go into
    its controls, every other control keeps its value. In the browser, not a server round trip:
    a value typed right after the pick is never overwritten by a late reply."""
    knobs = {
        c: picker.policy_defaults(spec)
        for c, spec in ((c, picker.strategy_spec(c)) for _, c in picker.strategy_choices())
        if spec
    }
    knobs = {c: k for c, k in knobs.items() if k}
    names = [p.name for p in CONTROLS]
    return (
        f"(choice, ...values) => {{ const k = ({json.dumps(knobs)})[choice] || {{}}; const names = {json.dumps(names)};"
        " return values.map((v, i) => (names[i] in k ? k[names[i]] : v)); }"
    )


def setting_note(gen_length: object, block_length: object, full_diffusion: object, *choices: object) -> gr.Markdown:
    """A visible note (and a warning toast) for each picked policy that will run outside the
    setting it was trained for; hidden otherwise, and for settings the run itself will refuse.
    ``choices`` are the panes' picker values: one (Explore's run) or two (Compare's A and B)."""
    specs = [picker.strategy_spec(c) for c in choices]
    try:
        config = engine_config(gen_length, block_length, full_diffusion, 0.0, 0)
    except (ValueError, TypeError):
        return gr.Markdown("", visible="hidden")
    panes = "AB" if len(specs) > 1 else ("run",)
    L, BL = config.gen_length, config.block_length
    notes = [note for s, p in zip(specs, panes, strict=False) if s and (note := picker.setting_warning(s, L, BL, p))]
    for note in notes:
        gr.Warning(note)
    text = "\n\n".join(f"⚠ {note}" for note in notes)
    return gr.Markdown(text, visible=True if text else "hidden")  # hidden takes no room above the grids


def shown_params(choice: str) -> tuple[Visibility, ...]:
    """Per control of a pane (:data:`CONTROLS`, then the policy file): True when ``choice`` uses it,
    else "hidden" — mounted but not displayed. Components created with ``visible=False`` are never
    mounted in the browser, so a later ``visible=True`` update would not show them."""
    info = picker.strategy_info(choice)
    used = {p.name for p in info.params} if info else set()
    flags = [p.name in used for p in CONTROLS] + [choice == picker.UPLOADED]
    return tuple(True if u else "hidden" for u in flags)


def param_visibility(choice: str) -> tuple[dict[str, Any], ...]:
    """Show only the controls the chosen strategy uses (its parameters' controls, the policy file)."""
    return tuple(gr.update(visible=shown) for shown in shown_params(choice))


def strategy_caption(choice: str) -> str:
    """One line saying what the pane's strategy does, for a class following along."""
    info = picker.strategy_info(choice)
    return info.caption if info else ""


def caption_update(choice: str) -> gr.Dropdown:
    """The picker's info line follows its choice (one line under the picker, no extra row)."""
    return gr.Dropdown(info=strategy_caption(choice))


def check_policy_upload(files: list[str] | None, pane: str) -> None:
    """Validate an uploaded policy as soon as it arrives (a clear message instead of a failed run)."""
    if files:
        with user_errors(f"Policy upload for pane {pane}"):
            prepare_uploaded_policy(files, pane)
        gr.Info(f"Pane {pane}: policy loaded and checked.")


def param_control(param: Param, value: float | None, elem_id: str, visible: Visibility) -> gr.Slider | gr.Number:
    """A parameter's control: a slider over [low, high] when both are set, else a number box
    (an optional one takes 0 for "not set")."""
    name = public_name(param)
    label = f"{param.symbol} ({name})" if param.symbol else name
    help_ = INFO.get(param.name, param.help)
    info = f"{help_}; 0 leaves it unset" if param.optional else help_
    if param.low is not None and param.high is not None:
        step = 1 if param.type is int else 0.01
        return gr.Slider(
            param.low, param.high, value=value, step=step, label=label, info=info, visible=visible, elem_id=elem_id
        )
    return gr.Number(
        value,
        precision=0 if param.type is int else None,
        label=label,
        info=info,
        minimum=0 if param.optional else param.low,
        visible=visible,
        elem_id=elem_id,
    )


class StrategyPane:
    """One pane's strategy controls, showing ``spec``: the picker (``strategy-<p>``), its caption,
    one control per :data:`CONTROLS` entry and the policy upload (``policy-<p>``).

    :attr:`inputs` are the controls in :data:`PANE_FIELDS` order, what a handler receives and
    :class:`~.settings.PaneInputs` reads; :meth:`show` sets them to another strategy.
    """

    def __init__(self, pane: str, spec: StrategySpec, label: str | None = None) -> None:
        self.pane = pane
        p = pane.lower()
        choice, *params = pane_values(spec)
        show = shown_params(choice)
        # allow_custom_value: Gradio's own "not in the list of choices" error echoes the value
        # unescaped into the toast; pane_spec refuses unknown strategies with an escaped message
        self.strategy = gr.Dropdown(
            picker.strategy_choices(),
            value=choice,
            label=label or f"Strategy {pane}",
            info=strategy_caption(choice),
            elem_id=f"strategy-{p}",
            allow_custom_value=True,
        )
        self.strategy.change(caption_update, self.strategy, self.strategy, api_visibility="private", queue=False)
        with gr.Row():
            self.controls = [
                param_control(param, value, f"{control_name(param)}-{p}", visible)
                for param, value, visible in zip(CONTROLS, params, show[:-1], strict=True)
            ]
        self.files = checked_file(
            file_count="multiple",
            file_types=[".safetensors", ".json"],
            label="policy model.safetensors (+ config.json)",
            visible=show[-1],
            elem_id=f"policy-{p}",
        )
        self.strategy.change(
            param_visibility, self.strategy, [*self.controls, self.files], api_visibility="private", queue=False
        )
        self.files.upload(lambda f: check_policy_upload(f, pane), self.files, None, api_visibility="private")
        # .input, not .change: a story or a loaded trace sets the picker and its τ_π together
        self.strategy.input(None, [self.strategy, *self.controls], self.controls, js=knobs_js(), queue=False)

    @property
    def inputs(self) -> list[gr.components.Component]:
        """The controls in :data:`PANE_FIELDS` order."""
        out: list[gr.components.Component] = [self.strategy, *self.controls, self.files]
        assert len(out) == len(PANE_FIELDS)
        return out

    @property
    def settable(self) -> list[gr.components.Component]:
        """The controls a story sets (all but the upload), in :func:`pane_values` order."""
        return [self.strategy, *self.controls]


# ---- one decode's views --------------------------------------------------------------------------


class TracePane:
    """The views of one decode: its token grid, stats and heatmap, registered in ``components``
    as ``grid_<p>``, ``stats_<p>`` and ``heat_<p>`` (elem ids ``<prefix>grid-<p>`` …)."""

    def __init__(
        self,
        components: Components,
        pane: str,
        prefix: str = "",
        *,
        empty_grid: str | None = None,
        js_on_load: str | None = None,
        labelled_heatmap: bool = True,
    ) -> None:
        p = pane.lower()
        with gr.Column():
            grid_kwargs: dict[str, Any] = {"js_on_load": js_on_load} if js_on_load else {}
            self.grid = gr.HTML(
                render_grid(None, 0, pane=p) if empty_grid is None else empty_grid,
                label=f"{pane.upper()}: token grid",  # the name API clients see (show_label is off)
                elem_id=f"{prefix}grid-{p}",
                **grid_kwargs,
            )
            self.stats = gr.HTML(
                stats_html(None, 0, pane=p), label=f"{pane.upper()}: stats", elem_id=f"{prefix}stats-{p}"
            )
        self.labelled_heatmap = labelled_heatmap
        self.p, self.prefix = p, prefix
        components.add(**{f"grid_{p}": self.grid, f"stats_{p}": self.stats})

    def heatmap(self, components: Components) -> gr.Plot:
        """The pane's step × position heatmap (placed where the tab calls this)."""
        if self.labelled_heatmap:
            title = self.p.upper()
            plot = gr.Plot(
                heatmap_figure(None, title=title),
                label=f"{title}: step × position",
                show_label=False,
                elem_id=f"{self.prefix}heat-{self.p}",
            )
        else:
            plot = gr.Plot(
                label=f"{self.p.upper()}: step × position", show_label=False, elem_id=f"{self.prefix}heat-{self.p}"
            )
        components.add(**{f"heat_{self.p}": plot})
        return plot
