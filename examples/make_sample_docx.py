"""Rebuild examples/docs/emberlark_solar_oven.docx from the text below (run once; the .docx is committed).

The sample corpus needs at least one .docx with a table so the reader's docx path (paragraphs *and*
table cells) is exercised by the quickstart; keeping the source here lets anyone edit the facts and
regenerate the file:  python examples/make_sample_docx.py
"""
from __future__ import annotations

from pathlib import Path

from docx import Document

OUT = Path(__file__).resolve().parent / "docs" / "emberlark_solar_oven.docx"

TITLE = "The Emberlark Solar Oven by Vantrellis Kitchenworks"

PARAGRAPHS = [
    "Vantrellis Kitchenworks is a small appliance maker founded in 2009 in the lakeside city of Oskarby "
    "by the engineer Mirela Dunhaven and the baker Teodor Quist. For its first ten years the company made "
    "only copper kettles. Its best-known product today is the Emberlark, a portable oven that bakes bread "
    "using nothing but sunlight.",
    "The Emberlark was launched on 14 March 2021. It folds open like a flower: eight mirrored petals made "
    "of polished aluminium focus sunlight onto a black ceramic baking chamber. On a clear day the standard "
    "model reaches 260 degrees Celsius in about 25 minutes and can bake a one-kilogram loaf in 50 minutes. "
    "The oven is assembled at the company's factory in the Lorsk Valley, and the mirrors are made by a "
    "partner glassworks in the town of Fennick.",
    "Sales were far better than expected: Vantrellis sold 42,000 Emberlark ovens in the first twelve "
    "months, most of them to campers and to bakeries in sunny mountain villages. The company's mascot, a "
    "cartoon lark called Pip, appears on every oven door.",
    "Not everything went smoothly. In August 2022 the company recalled 600 ovens because a faulty hinge "
    "could let a petal snap shut, and it replaced the hinge with a stainless-steel version free of charge. "
    "The Emberlark won the Golden Whisk design prize in 2023.",
    "The Emberlark comes in three sizes. Every model carries a seven-year warranty.",
]

TABLE = [
    ("Model", "Weight", "Peak temperature", "Price"),
    ("Emberlark Mini", "9 kg", "210 °C", "399 euros"),
    ("Emberlark Standard", "18.5 kg", "260 °C", "749 euros"),
    ("Emberlark Pro", "27 kg", "310 °C", "1,190 euros"),
]

CLOSING = (
    "In 2024 Vantrellis announced a fourth model, the Emberlark Nomad, designed to fit in a bicycle "
    "trailer; Mirela Dunhaven has said it will not go on sale before 2026."
)


def build(out: Path = OUT) -> Path:
    """Write the sample .docx (title, paragraphs, a facts table, closing paragraph) to ``out``."""
    doc = Document()
    doc.add_heading(TITLE, level=1)
    for text in PARAGRAPHS:
        doc.add_paragraph(text)
    table = doc.add_table(rows=len(TABLE), cols=len(TABLE[0]))
    table.style = "Table Grid"
    for r, row in enumerate(TABLE):
        for c, cell in enumerate(row):
            table.cell(r, c).text = cell
    doc.add_paragraph(CLOSING)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc.save(out)
    return out


if __name__ == "__main__":
    print(build())
