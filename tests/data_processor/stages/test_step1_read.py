import os

import pytest

from data_processor.stages.step1_read import (
    ReadError,
    decode_text,
    discover_files,
    load_documents,
    markdown_to_text,
    read_document,
    strip_reference_marks,
    table_text,
)


def make_docx(path, with_paragraphs=True):
    import docx

    d = docx.Document()
    if with_paragraphs:
        d.add_heading("Quillmere harbour", level=1)
        d.add_paragraph("The harbour of Quillmere was dredged in 1911.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Year", "Boats"
    table.cell(1, 0).text, table.cell(1, 1).text = "1911", "42"
    if with_paragraphs:
        d.add_paragraph("After the table comes this closing line.")
    d.save(str(path))
    return path


def test_docx_paragraphs_and_tables_in_order(tmp_path):
    text = read_document(make_docx(tmp_path / "a.docx"))
    assert text.index("Quillmere harbour") < text.index("dredged in 1911") < text.index("For year 1911, the boats is 42.")
    assert text.index("the boats is 42") < text.index("closing line")


def test_docx_with_only_a_table(tmp_path):
    assert read_document(make_docx(tmp_path / "t.docx", with_paragraphs=False)) == "For year 1911, the boats is 42."


def test_corrupt_docx_is_a_clear_error(tmp_path):
    good = make_docx(tmp_path / "good.docx").read_bytes()
    (tmp_path / "bad.docx").write_bytes(good[: len(good) // 2])
    with pytest.raises(ReadError, match=r"bad\.docx.*not a valid \.docx"):
        read_document(tmp_path / "bad.docx")


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16", "utf-8-sig", "utf-8"])
def test_txt_encodings(tmp_path, encoding):
    text = "Le café crème de la Société Générale à Genève: naïve façade, très élégant."
    (tmp_path / "f.txt").write_bytes(text.encode(encoding))
    assert read_document(tmp_path / "f.txt") == text


def test_utf16_without_bom_and_cyrillic_legacy():
    assert decode_text("Hello there, this is plain UTF-16 text.".encode("utf-16-le")).startswith("Hello there")
    assert decode_text("Привет, это русский текст про историю города.".encode("cp1251")).startswith("Привет")


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"  \n\t \n", "empty"),
    (bytes(range(256)) * 40, "binary"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(1, 32)) * 50, "binary"),
])
def test_unusable_txt(tmp_path, content, match):
    (tmp_path / "x.txt").write_bytes(content)
    with pytest.raises(ReadError, match=rf"x\.txt.*{match}"):
        read_document(tmp_path / "x.txt")


def test_markdown_syntax_is_dropped():
    md = "---\ntitle: x\n---\n# Title\nSome **bold** and *italic* and [a link](http://x) `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    text = markdown_to_text(md)
    assert "Title" in text and "#" not in text and "**" not in text and "http" not in text
    assert "bold" in text and "italic" in text and "a link" in text and "code" in text and "For a 1, the b is 2." in text
    assert "---" not in text and "title: x" not in text


def test_table_rows_become_sentences_that_name_each_value_by_its_column():
    rows = [["Model", "Weight", "Peak temperature", "GDP"], ["Emberlark Mini", "9 kg", "210 °C", "4."],
            ["Emberlark Pro", "27 kg", "", "-"]]
    assert table_text(rows) == ("For model Emberlark Mini, the weight is 9 kg, the peak temperature is 210 °C and the GDP is 4.\n"
                                "For model Emberlark Pro, the weight is 27 kg.")


@pytest.mark.parametrize("rows", [
    [["1911", "42"], ["1912", "40"]],  # no header: its first row has numbers
    [["Year"], ["1911"]],  # one column
    [["Year", ""], ["1911", "42"]],  # a header cell is empty
    [["Year", "Boats"]],  # no body
])
def test_tables_without_a_usable_header_stay_rows_of_cells(rows):
    assert table_text(rows) == "\n".join(" | ".join(c for c in r if c) for r in rows)


def test_a_row_of_another_width_than_the_header_stays_cells():
    assert table_text([["Year", "Boats"], ["1911", "42", "x"], ["1912", "40"]]) == (
        "1911 | 42 | x\nFor year 1912, the boats is 40.")


def test_markdown_tables_become_sentences_after_inline_markup():
    md = "Intro.\n\n| **Year** | Boats |\n|:---|---:|\n| 1911 | `42` |\n\nAfter | the table.\n"
    assert markdown_to_text(md) == "Intro.\n\nFor year 1911, the boats is 42.\n\nAfter | the table.\n"


def test_discovery_recursive_filtered_sorted_and_loop_safe(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.md").write_text("# Z\nzed text here.")
    (tmp_path / "a.txt").write_text("a text.")
    (tmp_path / "c.pdf").write_bytes(b"%PDF")
    (tmp_path / "d.odt").write_bytes(b"PK")  # a suffix the collector does not read
    (tmp_path / "b" / "loop").symlink_to(tmp_path, target_is_directory=True)  # a symlink loop
    (tmp_path / "self.txt").symlink_to(tmp_path / "self.txt")  # a link to itself
    files, problems = discover_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.txt", "b/z.md", "c.pdf"]
    assert any("loop" in p for p in problems) and any("self.txt" in p for p in problems)
    assert [f.name for f in discover_files(tmp_path, "md")[0]] == ["z.md"]


def test_unreadable_file_is_reported_and_others_go_on(tmp_path, monkeypatch):
    (tmp_path / "ok.txt").write_text("Fine text.")
    (tmp_path / "locked.txt").write_text("Secret text.")
    if os.geteuid() != 0:
        os.chmod(tmp_path / "locked.txt", 0)
    else:  # root reads anything: simulate the permission error
        from pathlib import Path

        real = Path.read_bytes

        def read_bytes(self):
            if self.name == "locked.txt":
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    docs, problems = load_documents(tmp_path)
    assert [d.name for d in docs] == ["ok.txt"]
    assert problems == ["locked.txt: cannot read (Permission denied)"]


def test_missing_folder_and_sharding(tmp_path):
    with pytest.raises(ReadError, match="no such file"):
        discover_files(tmp_path / "nope")
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(f"Document {i}.")
    shards = [[d.name for d in load_documents(tmp_path, num_shards=2, shard_index=k)[0]] for k in range(2)]
    assert shards == [["0.txt", "2.txt", "4.txt"], ["1.txt", "3.txt"]]


def test_reference_marks_are_removed_so_sentences_end_where_they_do(tmp_path):
    text = ("It is adapted as Latin Rhenus.[note 3] The spelling with Rh- is Greek.[12][13] "
            "It was founded in 1939[a] by the council.[citation needed]")
    assert strip_reference_marks(text) == ("It is adapted as Latin Rhenus. The spelling with Rh- is Greek. "
                                           "It was founded in 1939 by the council.")
    # a bracket after a space, or with anything else inside, is the text's own
    assert strip_reference_marks("The interval [0, 1] holds x [4], a quote [sic].") == "The interval [0, 1] holds x [4], a quote [sic]."
    path = tmp_path / "rhine.txt"
    path.write_text(text, encoding="utf-8")
    assert "[" not in read_document(path)
