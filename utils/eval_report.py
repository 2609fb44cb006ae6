"""Turn per-question scores into the evaluation's three outputs: results.json, a terminal table and
report.md (summary + the questions that flipped between the base model and each updated model).

Everything here is pure (dicts in, strings/dicts out) so it is tested without a model.

The ``results`` dict (written as results.json) looks like::

    {"headline_metric": "contains",
     "models": [{"label": "base", "model": ..., "adapter": null}, {"label": "lora", ...}],
     "sets": {"eval_qa": {"kind": "knowledge", "files": [...], "n": 40,
                          "summary": {"base": {"n", "contains", "exact", "f1", "judge"}, ...},
                          "delta": {"lora": {"contains": +0.35, "exact": ..., "f1": ..., "judge": ...}},
                          "flips": {"lora": {"gained": [i, ...], "lost": [i, ...]}},
                          "questions": [{"question", "answers", "source",
                                         "predictions": {"base": {"text", "exact", "contains", "f1", "judge"}}}]}},
     "config": {...}}
"""
from __future__ import annotations

from utils.scoring import HEADLINE_METRIC, METRICS, QuestionScore, aggregate

BASE_LABEL = "base"


def build_set_result(
    kind: str,
    files: list[str],
    questions: list[dict],
    predictions: dict[str, list[str]],
    scores: dict[str, list[QuestionScore]],
) -> dict:
    """Assemble one evaluation set's block of results.json.

    Args:
        kind: ``knowledge`` (new facts) or ``control`` (general knowledge, measures forgetting).
        files: the QA files the questions came from.
        questions: ``{"question", "answers", "source"}`` dicts, in order.
        predictions / scores: per model label, one entry per question (same order); the first label
            is the reference (normally ``base``) for deltas and flips.
    Raises:
        ValueError: if a model's predictions or scores do not match the questions one to one.
    """
    labels = list(predictions)
    for label in labels:
        if len(predictions[label]) != len(questions) or len(scores[label]) != len(questions):
            raise ValueError(f"model {label!r}: {len(predictions[label])} predictions for {len(questions)} questions")
    summary = {label: aggregate(scores[label]) for label in labels}
    ref = labels[0] if labels else None
    delta, flips = {}, {}
    for label in labels[1:]:
        delta[label] = {
            m: (None if summary[label][m] is None or summary[ref][m] is None
                else round(summary[label][m] - summary[ref][m], 4))
            for m in (*METRICS, "judge")
        }
        ref_ok = [getattr(s, HEADLINE_METRIC) for s in scores[ref]]
        new_ok = [getattr(s, HEADLINE_METRIC) for s in scores[label]]
        flips[label] = {
            "gained": [i for i, (a, b) in enumerate(zip(ref_ok, new_ok)) if not a and b],
            "lost": [i for i, (a, b) in enumerate(zip(ref_ok, new_ok)) if a and not b],
        }
    rows = []
    for i, q in enumerate(questions):
        rows.append({
            **q,
            "predictions": {label: {"text": predictions[label][i], **scores[label][i].to_dict()} for label in labels},
        })
    return {
        "kind": kind, "files": files, "n": len(questions), "reference": ref,
        "summary": summary, "delta": delta, "flips": flips, "questions": rows,
    }


def _fmt(value, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def format_table(results: dict) -> str:
    """A plain-text table: one row per model, per set the headline accuracy, its change against the
    reference model, exact match and F1 (and the judge score when one was run)."""
    sets = results["sets"]
    labels = [m["label"] for m in results["models"]]
    with_judge = any(s["summary"][lbl].get("judge") is not None for s in sets.values() for lbl in s["summary"])
    sub = ["acc", "Δacc", "EM", "F1"] + (["judge"] if with_judge else [])
    header1, header2 = ["model"], [""]
    for name, s in sets.items():
        title = f"{name} (n={s['n']})" if name == s["kind"] else f"{name} ({s['kind']}, n={s['n']})"
        header1 += [title] + [""] * (len(sub) - 1)
        header2 += sub
    body = []
    for label in labels:
        row = [label]
        for s in sets.values():
            summ = s["summary"].get(label)
            if summ is None:
                row += ["n/a"] * len(sub)
                continue
            d = s["delta"].get(label, {}).get(HEADLINE_METRIC)
            row += [_fmt(summ[HEADLINE_METRIC]), _fmt(d, signed=True), _fmt(summ["exact"]), _fmt(summ["f1"])]
            if with_judge:
                row.append(_fmt(summ.get("judge")))
        body.append(row)
    # Column widths: a set's title spans its sub-columns, so widen the first sub-column if needed.
    ncols = len(header2)
    widths = [max(len(r[c]) for r in [header2, *body]) for c in range(ncols)]
    widths[0] = max(widths[0], len(header1[0]))
    col = 1
    for name in sets:
        span = sum(widths[col: col + len(sub)]) + 2 * (len(sub) - 1)
        title = header1[col]
        if len(title) > span:
            widths[col] += len(title) - span
        col += len(sub)

    def line(cells: list[str], spanning: bool = False) -> str:
        out, c = [cells[0].ljust(widths[0])], 1
        while c < ncols:
            if spanning:
                span = sum(widths[c: c + len(sub)]) + 2 * (len(sub) - 1)
                out.append(cells[c].ljust(span))
                c += len(sub)
            else:
                out.append(cells[c].rjust(widths[c]))
                c += 1
        return "  ".join(out).rstrip()

    rule = "-" * len(line(header2))
    text = [line(header1, spanning=True), line(header2), rule] + [line(r) for r in body]
    text.append(f"acc = {HEADLINE_METRIC} accuracy (an answer or alias appears in the reply, headline metric); "
                "Δacc against the first row; EM = exact match on the primary answer; F1 = token F1.")
    return "\n".join(text)


def _md_escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(results: dict, table: str | None = None) -> str:
    """report.md: what was compared, the summary per set, and every flipped question with the
    expected answer and both models' replies."""
    labels = [m["label"] for m in results["models"]]
    lines = ["# Knowledge evaluation report", ""]
    lines += ["## Models", ""]
    for m in results["models"]:
        src = m["model"] + (f" + adapter `{m['adapter']}`" if m.get("adapter") else "")
        lines.append(f"- **{m['label']}**: {src}")
    lines += ["", f"Headline metric: **{HEADLINE_METRIC}** accuracy — a reply counts as correct when the primary "
              "answer or one of its aliases appears in it as whole words after normalisation (lower case, "
              "no punctuation or articles). EM = normalised exact match on the primary answer; F1 = SQuAD "
              "token F1 (best over the answers). Decoding is greedy and closed-book.", ""]
    if table:
        lines += ["```", table, "```", ""]
    for name, s in results["sets"].items():
        lines += [f"## {name} ({s['kind']}, {s['n']} questions)", ""]
        lines.append(f"Files: {', '.join(f'`{f}`' for f in s['files'])}")
        lines.append("")
        lines.append("| model | acc | Δacc | EM | F1 | judge |")
        lines.append("|---|---|---|---|---|---|")
        for label in labels:
            summ = s["summary"][label]
            d = s["delta"].get(label, {}).get(HEADLINE_METRIC)
            lines.append(f"| {label} | {_fmt(summ[HEADLINE_METRIC])} | {_fmt(d, True)} | {_fmt(summ['exact'])} "
                         f"| {_fmt(summ['f1'])} | {_fmt(summ.get('judge'))} |")
        lines.append("")
        ref = s.get("reference")
        for label, fl in s["flips"].items():
            for kind, title in (("gained", "wrong → right"), ("lost", "right → wrong")):
                idx = fl[kind]
                lines.append(f"### {label} vs {ref}: {title} ({len(idx)})")
                lines.append("")
                if not idx:
                    lines += ["None.", ""]
                    continue
                lines.append(f"| # | question | expected | {ref} | {label} |")
                lines.append("|---|---|---|---|---|")
                for i in idx:
                    q = s["questions"][i]
                    lines.append(
                        f"| {i} | {_md_escape(q['question'])} | {_md_escape(' / '.join(q['answers']))} "
                        f"| {_md_escape(q['predictions'][ref]['text'])} | {_md_escape(q['predictions'][label]['text'])} |"
                    )
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"
