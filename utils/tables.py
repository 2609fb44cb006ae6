"""The one plain-text table printer: evaluation reports, acceptance tests, benchmarks, timings."""
from __future__ import annotations


def format_table(header: list[str], rows: list[list[str]], *, align: str | None = None,
                 groups: list[tuple[str, int]] | None = None) -> str:
    """Columns two spaces apart under a dashed rule.

    Args:
        header: column titles.
        rows: cells as strings, one list per row (same length as ``header``).
        align: one character per column, ``l`` or ``r`` (default: all left).
        groups: optional titles above the header, each spanning ``n`` columns (their widths grow to fit).
    """
    n = len(header)
    align = align or "l" * n
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(n)]
    if groups:
        c = 0
        for title, span in groups:
            room = sum(widths[c: c + span]) + 2 * (span - 1)
            if len(title) > room:
                widths[c + span - 1] += len(title) - room
            c += span

    def line(cells) -> str:
        return "  ".join(str(x).rjust(w) if a == "r" else str(x).ljust(w)
                         for x, w, a in zip(cells, widths, align)).rstrip()

    out = []
    if groups:
        c, parts = 0, []
        for title, span in groups:
            parts.append(title.ljust(sum(widths[c: c + span]) + 2 * (span - 1)))
            c += span
        out.append("  ".join(parts).rstrip())
    out += [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)
