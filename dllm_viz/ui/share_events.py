"""Compare's ⬈ Share button and the page load that reads a shared link: the Gradio side of
:mod:`.share` (which checks every value), with escaped toasts for what a link cannot carry.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import gradio as gr

from . import allowed_models
from .errors import public_message
from .pane import pane_values
from .settings import PANE_FIELDS, PaneInputs
from .share import PANES, SETTINGS, SharedRun, current_run, decode, encode
from .updates import Components, Updates

MAX_PAGE_URL_CHARS = 2000
# The page's own address is the last input: the server may sit behind a proxy or in a Space's
# iframe, where only the browser knows the address a visitor can open.
PAGE_URL_JS = "(...args) => { args[args.length - 1] = window.location.href; return args; }"
# Onto the clipboard where the browser allows it (https or localhost), and selected in its box for
# a Ctrl+C where it does not.
COPY_JS = """(url) => {
  const box = document.querySelector('#share-url textarea, #share-url input');
  if (box) { box.focus(); box.select(); }
  try { navigator.clipboard.writeText(url).catch(() => {}); } catch (e) {}
}"""


def _models() -> set[str]:
    return {value for _, value in allowed_models.model_choices()}


def _warn(intro: str, run: SharedRun) -> None:
    if run.ignored:
        gr.Warning(public_message(f"{intro}: {'; '.join(run.ignored)}"), duration=15)


def page_base(page_url: object) -> str:
    """The page's address without its query or fragment; empty (a relative link) when the page
    sent none or something that is not an http(s) address."""
    if not isinstance(page_url, str) or len(page_url) > MAX_PAGE_URL_CHARS:
        return ""
    try:
        parts = urlsplit(page_url)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def share_link(
    model: object,
    prompt: object,
    gen_length: object,
    block_length: object,
    full: object,
    temperature: object,
    seed: object,
    *panes_and_page: object,
) -> Updates:
    """The link to the page with Compare's current settings, shown in the share box; a warning
    names what it leaves out (an uploaded policy, a value ▶ Run would refuse)."""
    n = len(PANE_FIELDS)
    values = dict(zip(SETTINGS, (model, prompt, gen_length, block_length, full, temperature, seed), strict=True))
    panes = {p: PaneInputs.of(panes_and_page[i * n : (i + 1) * n]) for i, p in enumerate(PANES)}
    run = current_run(values, panes, _models())
    _warn("The link leaves out", run)
    url = f"{page_base(panes_and_page[-1])}?{encode(run, allowed_models.default_model())}"
    return {"share_url": gr.Textbox(value=url, visible=True)}


def shared_outputs() -> tuple[str, ...]:
    """What a shared link sets: the settings, each pane's controls but the upload, the story caption
    and the example picker (neither describes the shared run)."""
    panes = tuple(f"{f}_{p}" for p in PANES for f in PANE_FIELDS[:-1])
    return (*SETTINGS, *panes, "caption", "examples")


def open_shared(request: gr.Request) -> Updates:
    """On page load: the settings a link's query string carries, checked (see :func:`.share.decode`);
    nothing runs until the visitor presses ▶ Run. A page opened without a link is left alone."""
    query = getattr(request, "query_params", None)
    pairs = list(query.multi_items()) if query is not None else []
    run = decode(pairs, _models())
    _warn("This link's settings were partly ignored", run)
    out: Updates = dict(run.settings)
    for p, spec in run.panes.items():
        out.update({f"{f}_{p}": v for f, v in zip(PANE_FIELDS, pane_values(spec), strict=False)})
    if out and ({"prompt"} | {f"strategy_{p}" for p in PANES}) & set(out):
        out.update(caption="", examples=None)
    return out


def share_bar(ui: Components) -> None:
    """⬈ Share and the box its link lands in, as compact as the status line beside them (the grids
    stay in a projector's first screen); the box is mounted, shown once there is a link."""
    share_btn = gr.Button("⬈ Share", elem_id="share-btn", scale=0, min_width=100)
    share_url = gr.Textbox(
        label="Link to these settings",  # what screen readers and API pages name it
        show_label=False,
        container=False,
        interactive=True,  # a disabled box can be neither focused nor selected for a Ctrl+C
        max_lines=1,
        visible="hidden",
        elem_id="share-url",
        scale=1,
    )
    ui.add(share_btn=share_btn, share_url=share_url)


def wire_share(demo: gr.Blocks, ui: Components) -> None:
    """⬈ Share builds the link from Compare's controls (``ui``); a page load fills them from one."""
    settings = ui.outputs(SETTINGS)
    pane_inputs = ui.outputs(f"{f}_{p}" for p in PANES for f in PANE_FIELDS)
    shared = ui.on(
        ui.get("share_btn", gr.Button).click,
        share_link,
        [*settings, *pane_inputs, ui["share_url"]],
        ("share_url",),
        js=PAGE_URL_JS,
        preprocess=False,  # the values are checked in .share, as a link's are
        show_progress="hidden",
        api_visibility="private",
    )
    shared.success(None, ui["share_url"], None, js=COPY_JS)
    ui.on(demo.load, open_shared, None, shared_outputs(), show_progress="hidden", api_visibility="private")
