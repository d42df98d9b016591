"""The words a class meets in the app, said once: the short ``info=`` lines under the controls
that use them, the hover text of the stats, and the glossary the About tab shows. One place, so a
control's help and the glossary never disagree. Plain text, no Gradio."""

from __future__ import annotations

NFE_INFO = "NFE: forward passes of the model, one per step; the cost of a run (fewer = faster)"
TAU_INFO = "policy temperature: below 1 sharpens its unmask probabilities"  # short: the pane is narrow
BETA_INFO = "scales the unmask probabilities: above 1 commits more per step"
BLOCK_INFO = "BL: positions filled left to right in blocks of BL; BL = L is full diffusion (no blocks)"

ENGINE_INFO = "engine: the decoding loop around the model (features, the strategy's decision, commits)"

INFO = {"temperature": TAU_INFO, "beta": BETA_INFO}  # by strategy parameter name
STAT_INFO = {"NFE": NFE_INFO, "engine": ENGINE_INFO}  # by stats label

GLOSSARY = {
    "NFE": "Number of function evaluations: forward passes of the dLLM, one per decoding step. It is "
    "the cost of a run; committing one token per step costs L NFE.",
    "τ_π (policy temperature)": "Divides the policy's logits before the sigmoid, s = σ(b/τ_π): below 1 makes "
    "it more decisive, above 1 more hesitant. A test-time knob; each shipped policy opens at the value "
    "chosen for it on validation problems.",
    "β (probability scaling)": "Scales the policy's unmask probabilities, u ~ Ber(min(1, β·s)): β > 1 commits "
    "more tokens per step (fewer NFE, more risk), β < 1 fewer. Also a test-time knob, no retraining.",
    "block length BL": "The answer of L positions is cut into blocks of BL; only the current block's masked "
    "positions can be committed.",
    "semi-AR vs full diffusion": "Semi-autoregressive: BL < L, blocks filled left to right. Full diffusion: "
    "BL = L, any position at any step. A learned policy is trained for one of them; the app warns when it "
    "runs in the other.",
    "recorded vs recomputed": "In Explore's step inspector: the unmask probability the policy gave during the "
    "run (recorded in the trace) beside the one the inspector gets by running the policy again on the "
    "trace's inputs, no dLLM needed (recomputed). The trace rounds confidences to 4 decimals, so the two "
    "can differ in the 4th decimal; a larger gap means another policy or τ_π/β.",
    "engine": "The decoding loop: at each step it runs the model, computes each position's confidence, asks "
    "the strategy which positions to commit, commits them and records the step. It never re-masks a token.",
}


def glossary_markdown() -> str:
    """The glossary as a Markdown definition list, for the About tab."""
    return "## Glossary\n\n" + "\n".join(f"* **{term}**: {text}" for term, text in GLOSSARY.items())
