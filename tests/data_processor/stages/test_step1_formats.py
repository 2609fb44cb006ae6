"""PDF, HTML and PPTX reading. Every file is built here in code: PDFs with fpdf2 (a scanned page is a page
with only an image; a truncated PDF is the first bytes of a valid one; an encrypted one comes from pypdf's
writer), PPTX with python-pptx."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from data_processor.stages import step1_read as read
from data_processor.stages.step1_formats import (
    OCR_HINT,
    clean_pdf_pages,
    html_blocks,
    is_multicolumn,
    join_lines,
    join_pages,
    page_blocks,
    strip_headers_footers,
)
from data_processor.stages.step1_read import ReadError, read_document, read_folder, read_pages
from data_processor.stages.step2_chunk import WordCounter, chunk_text

ROOT = Path(__file__).resolve().parents[3]
TABLE = [("Model", "Weight", "Price"), ("Emberlark Mini", "9 kg", "399 euros"),
         ("Emberlark Pro", "27 kg", "1,190 euros")]
TABLE_SENTENCES = ("For model Emberlark Mini, the weight is 9 kg and the price is 399 euros.\n"
                   "For model Emberlark Pro, the weight is 27 kg and the price is 1,190 euros.")


# -- building files ----------------------------------------------------------------------------------
def new_pdf(header: str | None = None, numbers: bool = False):
    from fpdf import FPDF

    class Doc(FPDF):
        def header(self):
            if header:
                self.set_font("helvetica", size=8)
                self.cell(0, 6, header, align="C")
                self.ln(10)

        def footer(self):
            if numbers:
                self.set_y(-15)
                self.set_font("helvetica", size=8)
                self.cell(0, 10, f"- {self.page_no()} -", align="C")

    pdf = Doc()
    pdf.set_font("helvetica", size=11)
    return pdf


def paragraphs_pdf(path: Path, pages: list[list[str]], **kw) -> Path:
    """A PDF whose pages hold these paragraphs (a blank line's height between paragraphs)."""
    pdf = new_pdf(**kw)
    for paras in pages:
        pdf.add_page()
        for p in paras:
            pdf.multi_cell(0, 6, p)
            pdf.ln(4)
    pdf.output(str(path))
    return path


def report_pdf(path: Path) -> Path:
    """Two pages: a running header, page numbers, a word hyphenated across lines, a table, and a sentence
    that goes on from page 1 to page 2."""
    pdf = new_pdf(header="Vantrellis annual report 2023", numbers=True)
    pdf.add_page()
    pdf.multi_cell(0, 6, "The Emberlark was launched on 14 March 2021 in Oskarby.")
    pdf.ln(4)
    pdf.multi_cell(0, 6, "Vantrellis sold 42,000 ovens to bakeries in sunny mountain vil-\nlages of Lorsk.")
    pdf.ln(4)
    with pdf.table() as table:
        for row in TABLE:
            cells = table.row()
            for c in row:
                cells.cell(c)
    pdf.ln(4)
    pdf.multi_cell(0, 6, "The mirrors are made by a partner glassworks in the town")
    pdf.add_page()
    pdf.multi_cell(0, 6, "of Fennick. Every model carries a seven-year warranty.")
    pdf.output(str(path))
    return path


def scanned_pdf(path: Path) -> Path:
    """Pages holding only a picture of text, as a scanner makes them."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (400, 120), "white")
    ImageDraw.Draw(img).text((10, 40), "The harbour was dredged in 1911.", fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    pdf = new_pdf()
    for _ in range(2):
        pdf.add_page()
        pdf.image(io.BytesIO(buf.getvalue()), x=10, y=10, w=180)
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path, source: Path, user_password: str = "secret") -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(source))
    writer.encrypt(user_password=user_password, owner_password="owner")
    writer.write(str(path))
    return path


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    s1 = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    s1.shapes.title.text = "The Emberlark solar oven"
    s1.placeholders[1].text = "It was launched on 14 March 2021."
    s1.notes_slide.notes_text_frame.text = "Mention the Golden Whisk prize of 2023."
    s2 = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    s2.shapes.title.text = "Models"
    shape = s2.shapes.add_table(3, 3, Inches(1), Inches(2), Inches(6), Inches(2))
    for r, row in enumerate(TABLE):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    deck.save(str(path))
    return path


PAGE = """<!DOCTYPE html><html><head><title>Emberlark</title><style>p {{color: red}}</style>
<script>var tracking = "do not read this";</script></head><body>
<header><nav><a href="/">Home</a> <a href="/shop">Shop</a> <a href="/about">About us</a></nav></header>
<div class="cookie-banner">We use cookies to improve your experience. <button>Accept all</button></div>
<aside><h3>Related products</h3><ul><li><a href="/k">Copper kettle</a></li></ul></aside>
<main><article>{body}</article></main>
<footer><p>Copyright 2024 Vantrellis. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
<script>console.log("footer script")</script></body></html>"""


def html_page(paragraphs: list[str], table=None) -> str:
    body = "".join(f"<h1>{p[2:]}</h1>" if p.startswith("# ") else f"<p>{p}</p>" for p in paragraphs)
    if table:
        head, *rows = table
        body += ("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr></thead><tbody>"
                 + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows) + "</tbody></table>")
    return PAGE.format(body=body)


# -- PDF -------------------------------------------------------------------------------------------------
def test_pdf_text_pages_headers_hyphens_and_tables(tmp_path):
    text, pages = read_pages(report_pdf(tmp_path / "report.pdf"))
    assert "annual report" not in text and "- 1 -" not in text and "- 2 -" not in text  # header, page numbers
    assert "sunny mountain villages of Lorsk." in text  # hyphenated across lines
    assert TABLE_SENTENCES in text
    # The sentence that runs over the page break stays one sentence; page 2 starts at its continuation.
    assert "partner glassworks in the town of Fennick." in text
    assert [label for _, label in pages] == ["p1", "p2"] and text[pages[1][0]:].startswith("of Fennick.")
    assert text.index("launched") < text.index("villages") < text.index("For model") < text.index("warranty")


def test_pdf_chunk_ids_name_the_page(tmp_path):
    paras = [[f"Page {n} tells that the lighthouse number {n} was built in {1800 + n}. It is {n} metres tall."]
             for n in range(1, 4)]
    text, pages = read_pages(paragraphs_pdf(tmp_path / "report.pdf", paras))
    chunks = chunk_text(text, WordCounter(), chunk_size=12, overlap=0, doc_name="report.pdf", pages=pages)
    assert [c.chunk_id for c in chunks] == ["report.pdf#p1", "report.pdf#p1.2", "report.pdf#p2", "report.pdf#p2.2",
                                            "report.pdf#p3", "report.pdf#p3.2"]
    assert chunks[2].text.startswith("Page 2")


@pytest.mark.parametrize("make, reason, words", [
    (lambda d: scanned_pdf(d / "scan.pdf"), read.NO_TEXT_LAYER, OCR_HINT),
    (lambda d: _truncated(report_pdf(d / "whole.pdf"), d / "cut.pdf"), read.CORRUPT, "corrupt or truncated PDF"),
    (lambda d: encrypted_pdf(d / "locked.pdf", report_pdf(d / "whole.pdf")), read.ENCRYPTED, "encrypted PDF"),
    (lambda d: _write(d / "page.pdf", html_page(["Saved from a browser."]).encode()), read.WRONG_SUFFIX,
     "not a .pdf file although named so: its content looks like HTML"),
    (lambda d: _write(d / "notes.pdf", b"Just some notes, typed in a text editor."), read.WRONG_SUFFIX,
     "its content looks like plain text"),
])
def test_bad_pdfs_are_named_with_their_reason(tmp_path, make, reason, words):
    path = make(tmp_path)
    with pytest.raises(ReadError) as err:
        read_document(path, name=path.name)
    assert err.value.reason == reason and str(err.value).startswith(f"{path.name}: ") and words in str(err.value)
    assert "\n" not in str(err.value)


def _truncated(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    return _write(path, data[: len(data) * 2 // 3])


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_pdf_with_only_an_owner_password_is_read(tmp_path):
    """Copy or print restrictions alone: the empty user password opens it, as every viewer does."""
    path = encrypted_pdf(tmp_path / "restricted.pdf", report_pdf(tmp_path / "whole.pdf"), user_password="")
    assert TABLE_SENTENCES in read_document(path)


def test_a_scanned_page_among_text_pages_is_logged_and_the_rest_kept(tmp_path, caplog):
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "The first page has text.")
    pdf.add_page()
    pdf.image(Image.new("RGB", (50, 50), "gray"), x=10, y=10, w=50)
    pdf.output(str(tmp_path / "mixed.pdf"))
    with caplog.at_level("WARNING"):
        text, pages = read_pages(tmp_path / "mixed.pdf", name="mixed.pdf")
    assert text == "The first page has text." and pages == ((0, "p1"),)
    assert "mixed.pdf: pages 2 have no text" in caplog.text and "ocrmypdf" in caplog.text


def test_a_two_column_page_is_read_column_by_column(tmp_path):
    pdf = new_pdf()
    pdf.add_page()
    left = " ".join(f"Left sentence {i} is about the glacier near the northern station." for i in range(12))
    right = " ".join(f"Right sentence {i} is about the harbour and its old stone pier." for i in range(12))
    with pdf.text_columns(ncols=2, gutter=10) as columns:
        columns.write(text=left)
        columns.new_column()
        columns.write(text=right)
    pdf.output(str(tmp_path / "columns.pdf"))
    text = " ".join(read_document(tmp_path / "columns.pdf").split())
    assert text == f"{left} {right}"  # layout mode would interleave the lines of the two columns


def test_header_footer_and_page_number_lines():
    bodies = ["The harbour opened in 1911.", "Its pier is 340 metres long.", "Boats still land there."]
    pages = [["  Annual report 2023  ", "", body, "", f"Page {n} of 3"] for n, body in enumerate(bodies, 1)]
    assert strip_headers_footers(pages) == [["", body, ""] for body in bodies]
    # One page: nothing repeats, but a bare page number at the bottom still goes; the top line stays.
    assert strip_headers_footers([["Title", "Text.", "iv"]]) == [["Title", "Text."]]
    # A long line that starts every page alike is body text, not a header.
    long = "The survey of the northern valleys measured the depth of each station on the river this year"
    assert strip_headers_footers([[f"{long} {n}.", "x"] for n in range(3)])[0][0].startswith("The survey")


def test_lines_join_into_paragraphs_and_hyphens():
    assert join_lines(["  sunny mountain vil-", "lages   of Lorsk."]) == "sunny mountain villages of Lorsk."
    assert join_lines(["Ilsabet Norrgaard-", "Quint worked in 1902-", "03 and 1905 -", "in Tromhavn."]) == (
        "Ilsabet Norrgaard-Quint worked in 1902-03 and 1905 - in Tromhavn.")
    assert page_blocks(["First line", "second line.", "", "", "Next paragraph."]) == [
        "First line second line.", "Next paragraph."]


def test_layout_tables_become_sentences_and_prose_does_not():
    lines = ["Intro.", "", "Model            Weight       Price", "",
             "Emberlark Mini   9 kg         399 euros", "", "Emberlark Pro    27 kg        1,190 euros", "", "After."]
    assert page_blocks(lines) == ["Intro.", TABLE_SENTENCES, "After."]
    assert clean_pdf_pages(["\n".join(lines)]) == ["Intro.\n\n" + TABLE_SENTENCES + "\n\nAfter."]
    left = "The glacier moved forty metres in the winter of that year"
    right = "while the river below it froze for the first time since"
    assert is_multicolumn([f"{left}      {right}"] * 8) and not is_multicolumn(["Name      Age", "Ada       36"] * 4)
    assert page_blocks([f"{left}      {right}"] * 3) == [" ".join([f"{left} {right}"] * 3)]  # long cells: prose


def test_join_pages_continues_a_sentence_across_a_page_break():
    text, pages = join_pages([("p1", "It was built in the town of Fen-"), ("p2", "nick. Next."), ("p3", ""),
                              ("p4", "Another page.")], continued=True)
    assert text == "It was built in the town of Fennick. Next.\n\nAnother page."
    assert pages == ((0, "p1"), (text.index("nick."), "p2"), (text.index("Another"), "p4"))
    assert join_pages([("s1", "Title"), ("s2", "lower case slide")])[0] == "Title\n\nlower case slide"


# -- HTML -------------------------------------------------------------------------------------------------
def test_html_main_text_without_boilerplate_and_tables_as_sentences(tmp_path):
    page = tmp_path / "oven.html"
    page.write_text(html_page(["# The Emberlark Solar Oven", "It was launched on 14 March 2021 in Oskarby.",
                               "Every model carries a seven-year warranty."], TABLE), encoding="utf-8")
    assert read_document(page) == ("The Emberlark Solar Oven\n\nIt was launched on 14 March 2021 in Oskarby.\n\n"
                                   "Every model carries a seven-year warranty.\n\n" + TABLE_SENTENCES)
    text = read_document(page)
    for boilerplate in ("Home", "cookies", "Copper kettle", "rights reserved", "tracking", "console", "color"):
        assert boilerplate not in text


def test_html_honours_its_declared_charset(tmp_path):
    page = tmp_path / "cafe.htm"
    page.write_bytes(html_page(["Le café de Genève a été fondé en 1820 par Amélie Roux."]).replace(
        "<head>", '<head><meta charset="iso-8859-1">').encode("latin-1"))
    assert read_document(page) == "Le café de Genève a été fondé en 1820 par Amélie Roux."


def test_html_without_main_text_and_html_blocks():
    assert html_blocks("<doc><main>Home Shop</main></doc>") == []
    xml = ("<doc><main><head>T</head><list><item>one <hi>a</hi></item><item>two</item></list>"
           "<table><row><cell>1</cell><cell>2</cell></row></table></main></doc>")
    assert html_blocks(xml) == ["T", "one a", "two", "1 | 2"]


@pytest.mark.parametrize("name, content, reason, words", [
    ("nav.html", "<html><body><nav><a href='/'>Home</a> <a href='/x'>Shop</a></nav><script>x()</script></body></html>",
     read.NO_MAIN_TEXT, "no main text"),
    ("x.html", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", read.WRONG_SUFFIX, "looks like a PDF"),
    ("x.docx", "<html><body><p>Exported from a wiki.</p></body></html>", read.WRONG_SUFFIX,
     "not a .docx file although named so: its content looks like HTML"),
    ("x.pptx", "Plain notes.", read.WRONG_SUFFIX, "looks like plain text"),
    ("x.txt", b"%PDF-1.4\n", read.WRONG_SUFFIX, "looks like a PDF"),
])
def test_bad_html_and_lying_extensions(tmp_path, name, content, reason, words):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ReadError) as err:
        read_document(path, name=name)
    assert err.value.reason == reason and str(err.value).startswith(f"{name}: ") and words in str(err.value)


def test_an_office_file_under_another_office_suffix(tmp_path):
    (tmp_path / "deck.docx").write_bytes(make_pptx(tmp_path / "deck.pptx").read_bytes())
    with pytest.raises(ReadError, match=r"^deck\.docx: not a \.docx file although named so: its content looks like a "
                                        r"\.pptx file$") as err:
        read_document(tmp_path / "deck.docx", name="deck.docx")
    assert err.value.reason == read.WRONG_SUFFIX


def test_a_txt_that_mentions_the_pdf_header_is_text(tmp_path):
    (tmp_path / "a.txt").write_text("A PDF file starts with %PDF-1.7 and a comment line.")
    assert read_document(tmp_path / "a.txt").startswith("A PDF file")


# -- PPTX -------------------------------------------------------------------------------------------------
def test_pptx_slides_notes_tables_and_slide_ids(tmp_path):
    text, pages = read_pages(make_pptx(tmp_path / "deck.pptx"))
    assert text == ("The Emberlark solar oven\n\nIt was launched on 14 March 2021.\n\n"
                    "Mention the Golden Whisk prize of 2023.\n\nModels\n\n" + TABLE_SENTENCES)
    chunks = chunk_text(text, WordCounter(), chunk_size=20, overlap=0, doc_name="deck.pptx", pages=pages)
    assert [c.chunk_id for c in chunks][:1] == ["deck.pptx#s1"] and chunks[-1].chunk_id.startswith("deck.pptx#s2")


def test_corrupt_pptx(tmp_path):
    data = make_pptx(tmp_path / "deck.pptx").read_bytes()
    (tmp_path / "cut.pptx").write_bytes(data[:400])
    with pytest.raises(ReadError, match=r"^cut\.pptx: .*\.pptx") as err:
        read_document(tmp_path / "cut.pptx", name="cut.pptx")
    assert err.value.reason == read.CORRUPT


# -- one document, four formats ---------------------------------------------------------------------------
def test_one_document_gives_the_same_chunks_as_txt_docx_pdf_and_html(tmp_path):
    """The sample document examples/docs/norrgaard_quint_glaciologist.txt, written as .docx (python-docx),
    .pdf (fpdf2, the paragraphs wrapped into lines and spread over two pages) and .html (a page with
    navigation, a cookie banner and a footer). Compared: each chunk's text with whitespace normalised
    (runs of spaces and line breaks as one space), and the number of chunks; the chunker is the
    collector's, with 40-word chunks and an 8-word overlap, so paragraph ends steer where chunks end."""
    import docx

    source = (ROOT / "examples/docs/norrgaard_quint_glaciologist.txt").read_text(encoding="utf-8")
    paras = [p.strip() for p in source.split("\n\n") if p.strip()]
    d = tmp_path / "forms"
    d.mkdir()
    (d / "doc.txt").write_text(source, encoding="utf-8")
    document = docx.Document()
    for p in paras:
        document.add_paragraph(p)
    document.save(str(d / "doc.docx"))
    paragraphs_pdf(d / "doc.pdf", [paras[:3], paras[3:]])
    (d / "doc.html").write_text(html_page(paras), encoding="utf-8")

    result = read_folder(d)
    assert result.problems == [] and [doc.name for doc in result.docs] == ["doc.docx", "doc.html", "doc.pdf", "doc.txt"]
    chunked = {doc.name: [" ".join(c.text.split())
                          for c in chunk_text(doc.text, WordCounter(), 40, 8, doc.name, doc.pages)]
               for doc in result.docs}
    assert len(chunked["doc.txt"]) > 5
    for name in ("doc.docx", "doc.pdf", "doc.html"):
        assert chunked[name] == chunked["doc.txt"], name


def test_read_folder_counts_skipped_files_by_reason(tmp_path):
    report_pdf(tmp_path / "good.pdf")
    scanned_pdf(tmp_path / "scan.pdf")
    _truncated(tmp_path / "good.pdf", tmp_path / "cut.pdf")
    (tmp_path / "fake.pdf").write_text("<html><body><p>Saved page.</p></body></html>")
    (tmp_path / "empty.txt").write_text("")
    result = read_folder(tmp_path)
    assert [d.name for d in result.docs] == ["good.pdf"]
    assert result.skipped_by_reason == {read.CORRUPT: 1, read.EMPTY: 1, read.WRONG_SUFFIX: 1, read.NO_TEXT_LAYER: 1}
    assert sorted(p.split(":")[0] for p in result.problems) == ["cut.pdf", "empty.txt", "fake.pdf", "scan.pdf"]
