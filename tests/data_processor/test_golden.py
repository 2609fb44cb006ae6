"""The collector's output, byte for byte, against saved golden files (scripted backend, no model).

A refactor of the pipeline (moving row writing, anchoring or the held-out choice between modules,
removing an option) must not change a single row. These runs use ``--recipe none`` and spell out
every setting, so a change of the default recipe does not change them. After an intended change of
the rows, rewrite the files with ``KU_UPDATE_GOLDEN=1 pytest tests/data_processor/test_golden.py``
and read the diff before committing it.
"""
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
#: the collect section of configs/recipes/default.yaml when these files were made, with held-out questions
RECIPE_SETTINGS = ("--qa_amount_per_fact", "2", "--personas_per_document", "2", "--cloze_per_fact", "2",
                   "--resolve_pronouns", "true", "--wh_spans_per_fact", "4", "--wh_phrasings", "2",
                   "--wh_keywords", "1", "--fact_answers", "true", "--anchor_questions", "true",
                   "--grounding_threshold", "0.75")
RUNS = {
    "recipe": (*RECIPE_SETTINGS, "--eval_fraction", "0.3"),
    # the generator's own answers (some invented: replaced by the fact), one chunk per wave
    "generated_answers": ("--qa_amount_per_fact", "2", "--personas_per_document", "3", "--cloze_per_fact", "1",
                          "--wh_spans_per_fact", "2", "--fact_answers", "false", "--anchor_questions", "true",
                          "--eval_fraction", "0.5", "--chunks_per_wave", "1"),
    # no generated question: a held-out fact gives its rule-made questions about one span
    "rule_rows": ("--qa_amount_per_fact", "0", "--personas_per_document", "0", "--cloze_per_fact", "2",
                  "--wh_spans_per_fact", "3", "--wh_keywords", "1", "--resolve_pronouns", "true",
                  "--eval_fraction", "0.5"),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_collection_is_byte_identical_to_the_golden_files(collect, docs_dir, tmp_path, name):
    out = tmp_path / f"{name}.jsonl"
    rc, _ = collect("--recipe", "none", "--data_path", str(docs_dir), "--save_path", str(out), *RUNS[name],
                    invent_answers=name == "generated_answers")
    assert rc == 0
    for made in (out, out.with_name(f"{name}.eval.jsonl")):
        golden = GOLDEN / made.name
        if os.environ.get("KU_UPDATE_GOLDEN") == "1":
            GOLDEN.mkdir(exist_ok=True)
            golden.write_bytes(made.read_bytes())
        assert made.read_bytes() == golden.read_bytes(), (
            f"{made.name} differs from {golden}: the collector's rows changed (diff the two files; "
            "KU_UPDATE_GOLDEN=1 rewrites the golden files when the change is intended)")
