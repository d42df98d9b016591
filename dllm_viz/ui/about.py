"""The About tab: a short classroom explanation with a figure."""

from __future__ import annotations

import gradio as gr

from ..views.diagram import about_figure
from ..views.glossary import glossary_markdown

ABOUT_MD = r"""
## What you are looking at

**Masked diffusion language models** (LLaDA, Dream, and the tiny model built into this app) do not write
left to right. Generation starts from a row of *L* `[MASK]` tokens after the prompt. At every **step** the
model looks at the whole row at once and proposes a token, with a probability, for every masked position.
A **decoding strategy** then decides which of those proposals to *commit*; committed tokens never change,
and the rest stay masked for the next step. The run ends when nothing is masked.

**NFE** (number of function evaluations) is the number of forward passes of the model, one per step. It is
the cost of a run: committing one token per step costs *L* NFE; committing several confident tokens at once
costs fewer, but risks committing tokens that do not fit together.

**Semi-autoregressive vs full diffusion.** With a block length *BL < L* the row is cut into blocks that
are filled left to right: only masked positions of the current block can be committed (a dashed line in the
grids and heatmaps marks block boundaries). With *BL = L* ("full diffusion") any position can be committed
at any step.

**Heuristic strategies** (the baselines):

| strategy | rule |
|---|---|
| High-Confidence-K (LLaDA) | commit the *k* most probable proposals per step, *k* from a fixed schedule |
| Margin-K / Entropy-K | same, ranked by top-1 − top-2 probability / by low entropy |
| Random-K | same schedule, random positions |
| Fast-dLLM threshold λ | commit every proposal with probability ≥ λ (at least one) |
| Fast-dLLM factor f | commit the longest confident prefix with (n + 1)(1 − c₍ₙ₎) < f |
| EB-Sampler γ | commit the lowest-entropy positions while their summed entropy, minus the largest, stays ≤ γ |

**The MDP and the learned policy** (Jazbec, Olausson et al., *Learning Unmasking Policies for Diffusion
Language Models*, arXiv 2512.09106). Decoding is a Markov decision process: the **state** is the prompt
plus the partly masked answer, the **action** is a yes/no "unmask now" per position, the frozen model is the
environment, and the **reward** comes at the end: correctness × ((L − NFE + 1)/L)^α, so a wrong answer earns
nothing and a right one earns more when it used fewer steps. The **policy** is a small transformer that
reads only the model's per-position confidence, the mask pattern and the time, and outputs an unmask
probability per position; actions are independent Bernoulli draws (if nothing is drawn, the most probable
position is committed). It is trained with GRPO. Two test-time knobs: **τ_π** sharpens or flattens its
probabilities, **β** scales them (u ~ Ber(min(1, β·s))), trading accuracy for NFE without retraining.
The `…-plus-one` policies add exactly one more position per step, drawn among those the Bernoulli draws
left out: "every certain token and one uncertain one", what EB-Sampler does by rule.

**Where the learned policies stand here** (built-in model, 500 test problems, README "Measured results"):
in full diffusion the policy that also reads each position's entropy (`full-diffusion-entropy`) solves
95.8 % at 2.7 forward passes: 3.4 points above Fast-dLLM's threshold at the same NFE and level with
EB-Sampler in accuracy (95.4 %), but EB-Sampler needs 0.6 fewer forward passes (2.1). The policy that
reads each position's five largest probabilities instead (`full-diffusion-top5`) solves 95.0 % at 1.9:
level with EB-Sampler (−0.4 points, within noise) at 0.2 fewer forward passes. The paper-style
policy (max-probability input, independent draws) solves 87.5 % at 2.7, and 88.6 % at 2.8 when
retrained on 9× the rollouts with a checkpoint chosen on validation problems: its action and input,
not its training, hold it back. In semi-AR blocks `semi-ar-entropy` solves 94.1 % at 8.7, level
with EB-Sampler (93.8 % at 8.9) and 3.7 points above
Fast-dLLM's threshold. The paper's claim of clearly beating the best heuristic in full diffusion is not
reproduced on this model yet.

## How to read the Compare tab

* Both panes decode the **same prompt with the same model and seed**, one step each at a time, so step *k*
  on the left and on the right happened "at the same time".
* **Token grid**: committed tokens are filled by their probability when committed (viridis colours: dark
  = unsure, yellow = sure); still-masked positions show the model's current best guess faintly, with a
  coloured bar for its probability; tokens committed at the shown step are outlined. Hover for the top-k
  alternatives.
* **Heatmaps**: rows are steps, columns positions, colour is the model's confidence; squares mark where and
  when each position was committed (the unmask order). For a policy pane a second panel shows its unmask
  probabilities. A dashed line marks the first step where A and B committed different positions.
* **Replay**: drag the slider (also while running), or press Play. Download the run as JSON and replay it
  later here without any model, or as a GIF.
"""


def build_about_tab() -> None:
    gr.HTML(about_figure(), elem_id="about-figure")
    gr.Markdown(
        "Left: a toy answer revealed over four steps in two blocks (outlined = committed at that step). "
        "Right: one decoding step as an MDP transition."
    )
    gr.Markdown(ABOUT_MD, elem_id="about-text")
    gr.Markdown(glossary_markdown(), elem_id="about-glossary")
