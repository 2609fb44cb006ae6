"""Rebuild examples/pdf/docs/gettysburg_address.pdf from the text below (run once; the PDF is committed).

The collector reads PDFs; the examples need one real-world, public-domain PDF that a test reads end to
end. Page 1 is Abraham Lincoln's Gettysburg Address of 19 November 1863, in the wording of the Bliss
copy (a speech by a US President in office: public domain), its dashes typed as "--" because the PDF's
built-in Helvetica has no em dash. Page 2 is a short note and a table of two dates, written for this
project. Every page has a running header and a page number, as reports do, so the reader's header and
footer removal is exercised. The creation date is fixed, so a rebuild gives the same bytes with the same
fpdf2 version:  python examples/make_sample_pdf.py
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

OUT = Path(__file__).resolve().parent / "pdf" / "docs" / "gettysburg_address.pdf"

TITLE = "Address delivered at the dedication of the Cemetery at Gettysburg"

ADDRESS = [
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in "
    "Liberty, and dedicated to the proposition that all men are created equal.",
    "Now we are engaged in a great civil war, testing whether that nation, or any nation so conceived and so "
    "dedicated, can long endure. We are met on a great battle-field of that war. We have come to dedicate a "
    "portion of that field, as a final resting place for those who here gave their lives that that nation "
    "might live. It is altogether fitting and proper that we should do this.",
    "But, in a larger sense, we can not dedicate -- we can not consecrate -- we can not hallow -- this ground. "
    "The brave men, living and dead, who struggled here, have consecrated it, far above our poor power to add "
    "or detract. The world will little note, nor long remember what we say here, but it can never forget what "
    "they did here. It is for us the living, rather, to be dedicated here to the unfinished work which they "
    "who fought here have thus far so nobly advanced. It is rather for us to be here dedicated to the great "
    "task remaining before us -- that from these honored dead we take increased devotion to that cause for "
    "which they gave the last full measure of devotion -- that we here highly resolve that these dead shall "
    "not have died in vain -- that this nation, under God, shall have a new birth of freedom -- and that "
    "government of the people, by the people, for the people, shall not perish from the earth.",
]
SIGNATURE = ["Abraham Lincoln.", "November 19, 1863."]

NOTE = ("This is the text of the Bliss copy, one of five known manuscripts of the address in Lincoln's hand. "
        "The address was given at the dedication of the Soldiers' National Cemetery in Gettysburg, Pennsylvania.")
TABLE = [
    ("Event", "Date", "Place"),
    ("Battle of Gettysburg", "1-3 July 1863", "Gettysburg, Pennsylvania"),
    ("Gettysburg Address", "19 November 1863", "Soldiers' National Cemetery"),
]


class _Pages(FPDF):
    def header(self):
        self.set_font("helvetica", size=8)
        self.cell(0, 6, "The Gettysburg Address (1863)", align="C")
        self.ln(12)

    def footer(self):
        self.set_y(-15)
        self.set_font("helvetica", size=8)
        self.cell(0, 10, f"Page {self.page_no()}", align="C")


def build(out: Path = OUT) -> Path:
    pdf = _Pages()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=timezone.utc))
    pdf.set_title("The Gettysburg Address")
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=13)
    pdf.multi_cell(0, 7, TITLE)
    pdf.ln(5)
    pdf.set_font("helvetica", size=11)
    for para in ADDRESS:
        pdf.multi_cell(0, 6, para)
        pdf.ln(4)
    for line in SIGNATURE:
        pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    pdf.multi_cell(0, 6, NOTE)
    pdf.ln(4)
    with pdf.table(col_widths=(55, 45, 70)) as table:
        for row in TABLE:
            cells = table.row()
            for c in row:
                cells.cell(c)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


if __name__ == "__main__":
    print(build())
