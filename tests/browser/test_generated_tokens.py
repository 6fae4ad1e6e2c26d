"""M4 in a real browser: the head view marks the tokens a model generated and shows each one's step."""

from __future__ import annotations

import attnscope

from .conftest import open_view


def test_head_view_marks_generated_tokens_with_their_steps_top_next_tokens(page, tmp_path, tiny):
    cap = attnscope.generate(tiny("gpt2"), "The girl ran to a local pub to", max_new_tokens=4, top_k=2)
    assert cap.generation is not None
    open_view(page, tmp_path, attnscope.head_view(cap).to_html(), ".attnscope-hv")
    marked = page.page.locator(".attnscope-hv-queries .attnscope-hv-generated")
    indices = [int(i) for i in marked.evaluate_all("nodes => nodes.map((n) => n.dataset.index)")]
    assert indices == list(cap.tokens.generated)
    step = cap.generation.steps[0]
    title = marked.first.get_attribute("title")
    top = ", ".join(f"{t} {p:.3f}" for t, p in zip(step.top_tokens, step.top_probabilities))
    assert title == f"generated: {step.token} (p {step.probability:.3f}); the step's top next tokens: {top}"
    style = marked.first.evaluate("n => getComputedStyle(n).fontStyle")
    assert style == "italic"
    assert page.page.locator(".attnscope-hv-keys .attnscope-hv-generated").count() == len(cap.tokens.generated)
    assert page.errors == [] and page.blocked == []
