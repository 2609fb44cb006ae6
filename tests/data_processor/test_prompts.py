"""Prompt templates: every stage and language loads and renders; the file format; custom folders."""
import pytest

from data_processor.prompts import LANGUAGES, load_lines, load_template, parse_template

STAGES = ("theme", "facts", "qa", "roles", "diversify")
VALUES = dict(text="T.", theme="th", doc_theme="dt", fact="F.", angle="", n="2", role="r", question="Q?", answer="A.")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", STAGES)
def test_every_template_loads_and_renders(stage, language):
    t = load_template(stage, language)
    chat = t.render(**VALUES)
    assert chat[-1]["role"] == "user" and all(m["content"] for m in chat)
    assert "$" not in "".join(m["content"] for m in chat)
    assert "$error" not in t.repair_message("bad")
    assert load_lines("qa_angles", language) and len(load_lines("roles_fallback", language)) >= 5


def test_template_format_and_custom_prompt_dir(tmp_path):
    t = parse_template("comment\n### system\nS $x\n### user\nU {json} $y\n### repair\nR $error")
    assert t.render(x="1", y="2") == [{"role": "system", "content": "S 1"}, {"role": "user", "content": "U {json} 2"}]
    assert t.repair_message("oops") == "R oops"
    with pytest.raises(KeyError, match=r"\$y"):
        t.render(x="1")
    with pytest.raises(ValueError):
        parse_template("### assistant\nonly an answer")
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "theme.txt").write_text("### user\nMine: $text")
    assert load_template("theme", "en", tmp_path).render(text="x")[0]["content"] == "Mine: x"
    assert load_template("facts", "en", tmp_path).source.endswith("prompts/en/facts.txt")  # falls back
    with pytest.raises(FileNotFoundError):
        load_template("theme", "fr")
