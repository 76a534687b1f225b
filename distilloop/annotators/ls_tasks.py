"""What a Label Studio review task is made of: the project's labeling config (the item, the teachers' votes
read-only, the answer control, a corrected rationale), the instructions reviewers read (the campaign's guideline),
each task's data, and the answer (and its id and last change) read back from an annotation. No server calls here
(:mod:`distilloop.annotators.label_studio` makes them)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import quoteattr

from distilloop.core.answers import AnswerSpace, LabelSet
from distilloop.core.types import ReviewItem, render_input

LABEL_FROM = "label"
RATIONALE_FROM = "rationale"
TO_NAME = "text"
MODEL_VERSION = "distilloop-ensemble"


#: the reviewer's answer control per kind of answer space (its ``review_control``), and the rows of its
#: corrected-rationale box
CONTROLS = {
    "choices": ('  <Header value="Your label (pre-filled with the ensemble\'s vote)"/>\n'
                f'  <Choices name="{LABEL_FROM}" toName="{TO_NAME}" choice="single" showInline="true" required="true">\n'
                "{choices}\n  </Choices>", "Corrected rationale", 3),
    "number": ('  <Header value="Your answer, a number (pre-filled with the ensemble\'s vote)"/>\n'
               f'  <Number name="{LABEL_FROM}" toName="{TO_NAME}" step="0.000001" required="true"/>',
               "Corrected working", 5),
}


def labeling_config(space: AnswerSpace | Sequence[str]) -> str:
    """The project's labeling config: the item, the teachers' votes (read-only), the answer control the answer
    space asks for (``Choices`` of the label set, or a ``Number``), a corrected rationale."""
    if not isinstance(space, AnswerSpace):
        space = LabelSet(space)
    template, what, rows = CONTROLS[space.review_control]
    control = template.format(choices="\n".join(f"    <Choice value={quoteattr(x)}/>" for x in space.labels))
    return f"""<View>
  <Header value="Item"/>
  <Text name="{TO_NAME}" value="$text"/>
  <Header value="What each teacher said (read-only)"/>
  <HyperText name="teachers" value="$teachers_html"/>
{control}
  <Header value="{what} (optional: replaces the teachers' in the training data)"/>
  <TextArea name="{RATIONALE_FROM}" toName="{TO_NAME}" rows="{rows}" editable="true" maxSubmissions="1"/>
</View>"""


#: how the instructions this module writes begin (instructions that do not are someone else's, never replaced)
GUIDELINE_HEAD = "<h3>Guideline</h3>"


def instructions(guideline: str, space: AnswerSpace | Sequence[str]) -> str:
    """The project's instructions (Label Studio shows them before the first task and behind its Instructions
    button): the campaign's guideline, the teachers' own instruction, and what to do; HTML-escaped."""
    space = space if isinstance(space, AnswerSpace) else LabelSet(space)
    esc = html.escape
    answer = (f"Pick one of: {', '.join(esc(x) for x in space.labels)}." if space.review_control == "choices"
              else "Enter the answer, a number.")
    return (f"{GUIDELINE_HEAD}<p>{esc(guideline).replace(chr(10), '<br/>')}</p><p>{answer} The teachers were asked "
            "the same; their answers and reasons are shown for reference, and the ensemble's answer is pre-filled. "
            "Optionally correct the rationale: it replaces the teachers' in the training data.</p>")


def teachers_html(item: ReviewItem) -> str:
    """Every teacher's vote as an HTML table; all text is escaped (rationales are model output)."""
    v = item.verdict
    esc = html.escape
    rows = []
    for vote in v.votes:
        conf = vote.get("confidence")
        rows.append(
            "<tr><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                esc(str(vote.get("teacher"))), esc(str(vote.get("label") if vote.get("valid", True) else "(invalid)")),
                "-" if conf is None else f"{100 * float(conf):.0f}%", esc(str(vote.get("rationale") or ""))))
    head = (f"<p>Ensemble ({esc(v.method)}): <b>{esc(str(v.label))}</b>, agreement {100 * (v.agreement or 0.0):.0f}%</p>")
    return (head + "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
            "<tr><th>teacher</th><th>label</th><th>confidence</th><th>rationale</th></tr>" + "".join(rows)
            + "</table>")


def task_payload(item: ReviewItem, campaign: str | None = None) -> dict[str, Any]:
    """One task: the item, the votes, the ensemble's label pre-filled, and the campaign it belongs to (its id:
    two campaigns on one server never share a task)."""
    v = item.verdict
    data = {
        "text": render_input(item.fields), "teachers_html": teachers_html(item),
        "teachers": [{k: vote.get(k) for k in ("teacher", "label", "confidence", "rationale", "valid")}
                     for vote in v.votes],
        "example_id": item.example_id, "ensemble_label": v.label, "agreement": v.agreement,
        "distilloop_round": item.round_no, "distilloop_campaign": campaign,
    }
    task: dict[str, Any] = {"data": data}
    if v.label is not None:
        space = item.space
        result = {"from_name": LABEL_FROM, "to_name": TO_NAME, "type": space.review_control,
                  "value": space.review_value(v.label)}
        task["predictions"] = [{"model_version": MODEL_VERSION, "score": float(v.agreement or 0.0), "result": [result]}]
    return task


def parse_annotation(ann: dict[str, Any]) -> tuple[str | None, str | None]:
    """(label, corrected rationale) from an annotation's result list. The label is the answer control's (named
    ``label``), or, in a project whose labeling config people rewrote with a control of another name, the one
    choice or number control's."""
    label = rationale = None
    answers = []  # every choice or number given, by any control
    for r in ann.get("result") or []:
        value = r.get("value") or {}
        if "choices" in value or "number" in value:  # whatever the control gave; the answer space checks it
            given = (value.get("choices") or [None])[0] if "choices" in value else value.get("number")
            answers.append((r.get("from_name"), None if given is None else str(given)))
        elif r.get("from_name") == RATIONALE_FROM and value.get("text"):
            text = value["text"]
            rationale = (" ".join(text) if isinstance(text, list) else str(text)).strip() or None
    named = [given for name, given in answers if name == LABEL_FROM]
    label = named[0] if named else answers[0][1] if len(answers) == 1 else None
    return label, rationale


def unreadable(anns: Sequence[dict[str, Any]]) -> str | None:
    """Why annotations that answered (not skips) give no label: None when one of them gives one."""
    answered = [a for a in anns if not a.get("was_cancelled")]
    if not answered or any(parse_annotation(a)[0] is not None for a in answered):
        return None
    names = sorted({str(r.get("from_name")) for a in answered for r in a.get("result") or []
                    if "choices" in (r.get("value") or {}) or "number" in (r.get("value") or {})})
    return (f"its answer is in controls {', '.join(map(repr, names))}: name the answer's control {LABEL_FROM!r}"
            if names else "no choice or number was given")


def annotation_dict(ann: Any) -> dict[str, Any]:
    """An annotation as a plain dict, whether the SDK gave a model or the listing a dict."""
    return ann.model_dump() if hasattr(ann, "model_dump") else dict(ann)


def annotation_stamp(value: Any) -> str | None:
    """An annotation's ``updated_at`` as one string however it came (the SDK's datetime, a listing's or a webhook's
    ISO text), so that an unchanged annotation compares equal."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return str(value)
