"""Turn per-question scores into the evaluation's three outputs: results.json, a terminal table and
report.md (summary + the questions that flipped between the base model and each updated model, and those right in both).

Everything here is pure (dicts in, strings/dicts out) so it is tested without a model.

The ``results`` dict (written as results.json) looks like::

    {"headline_metric": "contains",
     "models": [{"label": "base", "model": ..., "adapter": null}, {"label": "lora", ...}],
     "sets": {"eval_qa": {"kind": "knowledge", "files": [...], "n": 40,
                          "summary": {"base": {"n", "contains", "exact", "f1", "judge"}, ...},
                          "delta": {"lora": {"contains": +0.35, "exact": ..., "f1": ..., "judge": ...}},
                          "flips": {"lora": {"gained": [i, ...], "lost": [i, ...], "kept": [i, ...]}},
                          "by_document": {"doc.txt": {"n": 10, "base": 0.1, "lora": 0.5}},
                          "questions": [{"question", "answers", "source",
                                         "predictions": {"base": {"text", "exact", "contains", "f1", "judge"}}}]}},
     "open_book": {"docs", "prompt", "context_tokens", "truncated"},      # with --open_book only
     "general_text": {"file", "rows", "tokens", "nll": {"base": 2.41, "lora": 2.47},
                      "change_pct": {"lora": +2.5}},                       # unless --general_text none
     "config": {...}}

With --open_book the model ``open_book`` (the base model reading each question's document) has scores on
the knowledge sets only; on the control set its cells read n/a.
"""
from __future__ import annotations

from evaluation.scoring import HEADLINE_METRIC, METRICS, QuestionScore, aggregate
from utils import tables

BASE_LABEL = "base"
#: the column of the base model answering with the question's document in its prompt (evaluation/open_book.py)
OPEN_BOOK_LABEL = "open_book"


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
            "kept": [i for i, (a, b) in enumerate(zip(ref_ok, new_ok)) if a and b],
        }
    rows = []
    for i, q in enumerate(questions):
        rows.append({
            **q,
            "predictions": {label: {"text": predictions[label][i], **scores[label][i].to_dict()} for label in labels},
        })
    by_document: dict[str, dict] = {}
    for i, q in enumerate(questions):
        if q.get("doc"):
            d = by_document.setdefault(q["doc"], {"n": 0, **{label: 0 for label in labels}})
            d["n"] += 1
            for label in labels:
                d[label] += int(getattr(scores[label][i], HEADLINE_METRIC))
    by_document = {doc: {"n": d["n"], **{label: round(d[label] / d["n"], 4) for label in labels}}
                   for doc, d in sorted(by_document.items())}
    return {
        "kind": kind, "files": files, "n": len(questions), "reference": ref, "by_document": by_document,
        "summary": summary, "delta": delta, "flips": flips, "questions": rows,
    }


def _fmt(value, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def results_table(results: dict) -> str:
    """A plain-text table: one row per model, per set the headline accuracy, its change against the
    reference model, exact match and F1 (and the judge score when one was run)."""
    sets = results["sets"]
    labels = [m["label"] for m in results["models"]]
    with_judge = any(s["summary"][lbl].get("judge") is not None for s in sets.values() for lbl in s["summary"])
    sub = ["acc", "Δacc", "EM", "F1"] + (["judge"] if with_judge else [])
    groups = [("", 1)] + [(f"{name} (n={s['n']})" if name == s["kind"] else f"{name} ({s['kind']}, n={s['n']})", len(sub))
                          for name, s in sets.items()]
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
    header = ["model"] + sub * len(sets)
    text = [tables.format_table(header, body, align="l" + "r" * (len(header) - 1), groups=groups)]
    text.append(f"acc = {HEADLINE_METRIC} accuracy (an answer or alias appears in the reply, headline metric); "
                "Δacc against the first row; EM = exact match on the primary answer; F1 = token F1.")
    if any(m.get("kind") == "open_book" for m in results["models"]):
        text.append(f"{OPEN_BOOK_LABEL} = the base model with each question's document in its prompt (the reading "
                    "baseline; knowledge sets only).")
    for name, s in sets.items():
        docs = s.get("by_document") or {}
        if s["kind"] == "knowledge" and len(docs) > 1:
            shown = [label for label in labels if label in next(iter(docs.values()))]
            rows = [[doc, str(d["n"]), *(_fmt(d[label]) for label in shown)] for doc, d in docs.items()]
            text += ["", f"{name}, {HEADLINE_METRIC} accuracy per document:",
                     tables.format_table(["document", "n", *shown], rows, align="lr" + "r" * len(shown))]
    if results.get("general_text"):
        text += ["", general_text_table(results["general_text"])]
    return "\n".join(text)


def general_text_table(block: dict) -> str:
    """The forgetting measure on general text: each model's mean token NLL and its change against the base."""
    rows = [[label, _fmt_nll(nll), _fmt_pct(block["change_pct"].get(label))] for label, nll in block["nll"].items()]
    return "\n".join([
        f"general text ({block['file']}: {block['rows']} rows, {block['tokens']} scored tokens), mean token NLL; "
        "a rise after the update is forgetting that replay does not teach to the test:",
        tables.format_table(["model", "NLL", "change"], rows, align="lrr")])


def _fmt_nll(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _fmt_pct(value) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def _md_escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(results: dict, table: str | None = None) -> str:
    """report.md: what was compared, the summary per set, and every question that either model got right
    (flipped ones first), with the expected answer and both models' replies, so each accuracy can be
    recounted from the replies: reference = kept + lost, other model = kept + gained."""
    labels = [m["label"] for m in results["models"]]
    lines = ["# Knowledge evaluation report", ""]
    lines += ["## Models", ""]
    for m in results["models"]:
        src = m["model"] + (f" + adapter `{m['adapter']}`" if m.get("adapter") else "")
        if m.get("kind") == "open_book":
            src += f", each knowledge question asked with its document from `{m['docs']}` in the prompt"
        lines.append(f"- **{m['label']}**: {src}")
    lines += ["", f"Headline metric: **{HEADLINE_METRIC}** accuracy — a reply counts as correct when the primary "
              "answer or one of its aliases appears in it as whole words after normalisation (lower case, "
              "no punctuation or articles; Chinese, Japanese and Korean text is matched per character, without "
              "word boundaries). EM = normalised exact match on the primary answer; F1 = SQuAD "
              "token F1 (best over the answers). Decoding is greedy and closed-book"
              + (f", except for **{OPEN_BOOK_LABEL}**, whose prompt is: "
                 f"`{_md_escape(results['open_book']['prompt'])}`" if results.get("open_book") else "") + ".", ""]
    if table:
        lines += ["```", table, "```", ""]
    for doc, cut in ((results.get("open_book") or {}).get("truncated") or {}).items():
        lines += [f"Open book: `{doc}` has {cut['tokens']} tokens; only its first {cut['kept']} were in the prompt "
                  f"(the model's context is {results['open_book']['context_tokens']} tokens).", ""]
    for name, s in results["sets"].items():
        lines += [f"## {name} ({s['kind']}, {s['n']} questions)", ""]
        lines.append(f"Files: {', '.join(f'`{f}`' for f in s['files'])}")
        lines.append("")
        lines.append("| model | acc | Δacc | EM | F1 | judge |")
        lines.append("|---|---|---|---|---|---|")
        for label in [label for label in labels if label in s["summary"]]:  # open_book: knowledge sets only
            summ = s["summary"][label]
            d = s["delta"].get(label, {}).get(HEADLINE_METRIC)
            lines.append(f"| {label} | {_fmt(summ[HEADLINE_METRIC])} | {_fmt(d, True)} | {_fmt(summ['exact'])} "
                         f"| {_fmt(summ['f1'])} | {_fmt(summ.get('judge'))} |")
        lines.append("")
        ref = s.get("reference")
        for label, fl in s["flips"].items():
            for kind, title in (("gained", "wrong → right"), ("lost", "right → wrong"), ("kept", "right in both")):
                idx = fl.get(kind, [])
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
