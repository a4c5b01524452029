# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse a saved copy of Apple's "Use Apple products on enterprise networks"
article (its HTML, or a text rendering with ``|`` tables) into catalog rows,
and compare them with the bundled catalog.

Language-independent: tables are read by column position (host, ports,
protocol, OS, description, proxy support), never by header words, and each
table is matched to a catalog service by the hosts it shares with it, so the
French, Japanese or English page gives the same result.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import (
    N_COLUMNS, CatalogError, fold, is_proxy_word, normalise_cells,
)

# The fields a refresh compares; descriptions are in the page's language and
# are reported, not compared.
COMPARED_FIELDS = ("ports", "protocols", "platforms", "supports_proxy")

_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")
# A ports cell: numbers separated by commas, semicolons, slashes or spaces (two
# paragraphs in one cell are read as two ports, never glued into one number).
_PORT_CELL_RE = re.compile(r"^\s*\d{1,5}((\s*[,;/]\s*|\s+)\d{1,5})*\s*$")
_HOSTISH_RE = re.compile(r"^\*?\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(/\S*)?$")
_PROTO_CELL_RE = re.compile(r"^\s*(TCP|UDP|SSH|QUIC|HTTPS?|SFTP)(\s*[,/]\s*(TCP|UDP|SSH|QUIC|HTTPS?|SFTP))*\s*$",
                            re.IGNORECASE)
_PLATFORM_WORD_RE = re.compile(r"(iPadOS|iOS|tvOS|watchOS|macOS|visionOS)", re.IGNORECASE)


# Bounds that no saved copy of Apple's article comes near (about 150 rows,
# 3,000 lines), so hostile input costs seconds at most.
MAX_LINES = 100000
MAX_ROWS = 5000


class CatalogParseError(CatalogError):
    """The page holds no host table we can read."""


class ParsedTable(object):
    def __init__(self, index, heading, intro, rows, where):
        self.index = index
        self.heading = heading
        self.intro = intro
        self.rows = rows          # list of cell lists, header excluded
        self.where = where        # "line 12" or "table 3"

    def title(self):
        return self.heading or self.intro or "table %d" % (self.index + 1)


def _split_cells(line):
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|"):
        text = text[:-1]
    return [c.strip() for c in text.split("|")]


def _is_heading(line):
    """A heading is a short line that does not end like a sentence."""
    text = line.strip()
    return bool(text) and len(text) <= 90 and not text.endswith((".", ":", "\u3002", "\uff1a", "!", "?"))


def _is_host_table(rows):
    """A host table has port numbers in its second column."""
    good = [r for r in rows if len(r) >= 3 and _PORT_CELL_RE.match(r[1] or "")]
    return bool(rows) and len(good) * 2 >= len(rows)


def _context(lines):
    """Return (heading, intro) from the text lines before a table."""
    intro = ""
    heading = []
    for line in reversed([ln.strip() for ln in lines if ln.strip()]):
        if _is_heading(line):
            heading.insert(0, line)
        elif heading:
            break
        elif not intro:
            intro = line
    return " \u2014 ".join(heading), intro


def _parse_pipe_tables(lines):
    """Tables of a text rendering: a header row, a ``---|---`` line, rows."""
    tables = []
    last_end = 0
    i = 1
    while i < len(lines):
        if _SEPARATOR_RE.match(lines[i]) and "|" in lines[i - 1]:
            header_at = i - 1
            rows = []
            j = i + 1
            while j < len(lines) and "|" in lines[j] and not _SEPARATOR_RE.match(lines[j]):
                rows.append(_split_cells(lines[j]))
                j += 1
            if _is_host_table(rows):
                heading, intro = _context(lines[last_end:header_at])
                tables.append(ParsedTable(len(tables), heading, intro, rows, "line %d" % (header_at + 1)))
            last_end = j
            i = j
        else:
            i += 1
    return tables


def _starts_row(cells):
    """A row starts with a host name, then a ports cell."""
    return len(cells) >= 2 and bool(_HOSTISH_RE.match(cells[0].strip())) and bool(_PORT_CELL_RE.match(cells[1]))


def _drop_header(context):
    """Drop the header cells (short lines just before the first row) from a table's context."""
    kept = [ln for ln in context if ln.strip()]
    n = 0
    while n < N_COLUMNS and kept and len(kept[-1].strip()) <= 40 and "\t" not in kept[-1].strip():
        kept.pop()
        n += 1
    return kept if n >= N_COLUMNS - 1 else [ln for ln in context if ln.strip()]


def _parse_tab_tables(lines):
    """Tab-separated tables (a browser's "save as text" or a copy-paste of the page).

    Cells are separated by tabs, rows by line breaks; a cell holding two
    paragraphs continues on the next line(s), so a row is complete when it
    has six cells or the next line starts a new row.
    """
    tables = []
    rows, buf, start, last_end, header_at = [], None, None, 0, None

    def close(end):
        if buf:
            rows.append(buf)
        if rows and _is_host_table(rows):
            ctx = lines[last_end:start] if header_at is None else lines[last_end:header_at]
            heading, intro = _context(ctx)
            tables.append(ParsedTable(len(tables), heading, intro, list(rows), "line %d" % ((header_at or start) + 1)))

    i = 0
    while i < len(lines):
        line = lines[i]
        text = line.strip("\r\n")
        if not text.strip():
            i += 1
            continue
        cells = [c.strip() for c in text.split("\t")]
        if _starts_row(cells):
            if start is None:
                start = i
                if i > 0 and lines[i - 1].count("\t") >= 2:
                    header_at = i - 1
                elif i > 1 and not lines[i - 1].strip() and lines[i - 2].count("\t") >= 2:
                    header_at = i - 2
            if buf:
                rows.append(buf)
            buf = cells
        elif buf and len(buf) < N_COLUMNS and (
                "\t" in text or _PORT_CELL_RE.match(text) or _is_platform_cell(text) or is_proxy_word(text)):
            buf[-1] = (buf[-1] + " " + cells[0]).strip()
            buf.extend(cells[1:])
        elif start is not None:
            close(i)
            rows, buf, start, header_at, last_end = [], None, None, None, i
            continue
        i += 1
        if buf is not None and len(buf) >= N_COLUMNS:
            rows.append(buf)
            buf = None
    if start is not None:
        close(len(lines))
    return tables


def _is_platform_cell(text):
    t = text.strip()
    return bool(_PLATFORM_WORD_RE.search(t)) or (bool(t) and set(t) <= set("-\u2012\u2013\u2014\u2015\u2212"))


def _parse_cell_lines(lines):
    """Tables saved with one cell per line (blank lines between), as some browsers save text.

    Empty cells leave no line, so a row is read by what each cell looks like:
    host, ports, protocol, then an OS cell, a description and a proxy answer
    when the lines look like them.
    """
    items = [(n, ln.strip()) for n, ln in enumerate(lines) if ln.strip()]
    tables = []
    k = 0
    rows, first_line, prev_end = [], None, 0
    while k < len(items):
        n, text = items[k]
        nxt = items[k + 1][1] if k + 1 < len(items) else ""
        nxt2 = items[k + 2][1] if k + 2 < len(items) else ""
        if _HOSTISH_RE.match(text) and _PORT_CELL_RE.match(nxt) and _PROTO_CELL_RE.match(nxt2):
            if first_line is None:
                first_line = n
            row = [text, nxt, nxt2]
            k += 3

            def starts_next(at):
                return (at + 1 < len(items) and _HOSTISH_RE.match(items[at][1])
                        and _PORT_CELL_RE.match(items[at + 1][1]))
            if k < len(items) and not starts_next(k) and _is_platform_cell(items[k][1]):
                row.append(items[k][1])
                k += 1
            else:
                row.append("")
            if k < len(items) and not starts_next(k) and is_proxy_word(items[k][1]):
                row.extend(["", items[k][1]])
                k += 1
            else:
                if k < len(items) and not starts_next(k) and len(items[k][1]) <= 300:
                    row.append(items[k][1])
                    k += 1
                else:
                    row.append("")
                if k < len(items) and not starts_next(k) and is_proxy_word(items[k][1]):
                    row.append(items[k][1])
                    k += 1
                else:
                    row.append("")
            rows.append(row)
            continue
        if rows:
            if _is_host_table(rows):
                heading, intro = _context(_drop_header(lines[prev_end:first_line]))
                tables.append(ParsedTable(len(tables), heading, intro, rows, "line %d" % (first_line + 1)))
            rows, first_line, prev_end = [], None, n
        k += 1
    if rows and _is_host_table(rows):
        heading, intro = _context(_drop_header(lines[prev_end:first_line]))
        tables.append(ParsedTable(len(tables), heading, intro, rows, "line %d" % (first_line + 1)))
    return tables


def parse_text(text):
    """Tables of a text copy of the page, in whichever form it was saved.

    ``|`` tables (``---|---`` under the header), tab-separated rows (a
    browser's "save as text", a copy-paste), or one cell per line; the form
    that yields the most rows wins.
    """
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise CatalogParseError("the page has %d lines, more than the %d a saved copy of Apple's article has; "
                                "save the article itself (HTML or text)" % (len(lines), MAX_LINES))
    best = []
    for parser in (_parse_pipe_tables, _parse_tab_tables, _parse_cell_lines):
        tables = parser(lines)
        if sum(len(t.rows) for t in tables) > sum(len(t.rows) for t in best):
            best = tables
    return best


class _HTMLTables(HTMLParser):
    """Collect headings, paragraphs and tables of a page, in order.

    A table nested in a cell is read as that cell's text (its cells separated
    by spaces); paragraphs and line breaks inside a cell are separated, so
    ``<p>443</p><p>80</p>`` reads as two ports, never as ``44380``.
    """

    _BLOCKS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "caption")

    def __init__(self):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.blocks = []          # ("heading"|"text", str) or ("table", rows)
        self._text = []
        self._tag = None
        self._stack = []          # outer tables being read: [rows, row, cell]
        self._table = None
        self._row = None
        self._cell = None
        self._skip = 0

    def _flush(self):
        text = " ".join("".join(self._text).split())
        if text and self._table is None:
            kind = "heading" if (self._tag or "").startswith("h") and len(self._tag) == 2 else "text"
            self.blocks.append((kind, text))
        self._text = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "noscript"):
            self._skip += 1
        elif tag == "table":
            if self._table is None:
                self._flush()
            else:
                self._stack.append((self._table, self._row, self._cell))
            self._table, self._row, self._cell = [], None, None
        elif self._table is not None:
            if tag == "tr":
                self._row = []
            elif tag in ("td", "th"):
                self._cell = []
            elif self._cell is not None and (tag == "br" or tag in self._BLOCKS):
                self._cell.append(" ")
        elif tag in self._BLOCKS or tag == "br":
            self._flush()
            self._tag = tag

    def _end_cell(self):
        if self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()).strip(" ,"))
        self._cell = None

    def handle_endtag(self, tag):
        if tag in ("script", "style", "noscript"):
            self._skip = max(0, self._skip - 1)
        elif tag == "table" and self._table is not None:
            if self._cell is not None:
                self._end_cell()
            if self._row:
                self._table.append(self._row)
            inner = self._table
            if self._stack:
                self._table, self._row, self._cell = self._stack.pop()
                if self._cell is not None:
                    self._cell.append(" " + " ".join(c for r in inner for c in r if c) + " ")
            else:
                self.blocks.append(("table", inner))
                self._table, self._row, self._cell = None, None, None
        elif self._table is not None:
            if tag in ("td", "th"):
                self._end_cell()
            elif tag == "tr" and self._row is not None:
                if self._cell is not None:
                    self._end_cell()
                self._table.append(self._row)
                self._row = None
            elif self._cell is not None and tag in self._BLOCKS:
                self._cell.append(" ")
        elif tag in self._BLOCKS:
            self._flush()
            self._tag = None

    def handle_data(self, data):
        if self._skip:
            return
        if self._table is not None:
            if self._cell is not None:
                self._cell.append(data)
        else:
            self._text.append(data)

    def close(self):
        HTMLParser.close(self)
        while self._table is not None:
            self.handle_endtag("table")
        self._flush()


def parse_html(html):
    parser = _HTMLTables()
    parser.feed(html)
    parser.close()
    tables = []
    headings, texts = [], []
    count = 0
    for kind, value in parser.blocks:
        if kind == "heading":
            if texts:
                headings = []
            texts = []
            headings.append(value)
        elif kind == "text":
            texts.append(value)
        else:
            count += 1
            rows = [r for r in value if any(c for c in r)]
            if rows and not _PORT_CELL_RE.match(rows[0][1] if len(rows[0]) > 1 else ""):
                rows = rows[1:]          # the header row
            if _is_host_table(rows):
                tables.append(ParsedTable(len(tables), " \u2014 ".join(headings[-2:]),
                                          texts[-1] if texts else "", rows, "table %d" % count))
            headings, texts = [], []
    return tables


def looks_like_html(text):
    head = text[:4096].lower()
    return "<table" in text.lower() or "<html" in head or "<!doctype html" in head


def parse_article(text, source="the page"):
    """Return the host tables of a saved article (HTML or text)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    tables = parse_html(text) if looks_like_html(text) else parse_text(text)
    rows = sum(len(t.rows) for t in tables)
    if rows > MAX_ROWS:
        raise CatalogParseError("%s has %d table rows, more than the %d Apple's article could hold; "
                                "this is not a saved copy of the article" % (source, rows, MAX_ROWS))
    if not tables:
        raise CatalogParseError(
            "%s holds no host table: expected Apple's tables (HTML <table> rows, or text rows like "
            "'host | ports | protocol | OS | description | proxies |' under a '---|---' line). "
            "Save the whole article 'Use Apple products on enterprise networks' (HTML or its text) "
            "and try again." % source)
    return tables


def _match_sections(tables, sections):
    """Map each parsed table to a catalog section id by shared hosts.

    Greedy on the Jaccard similarity of host sets; a table that shares no host
    with any section is new (id ``None``).
    """
    hosts_of = {s["id"]: set(s["hosts"]) for s in sections}
    order = {s["id"]: n for n, s in enumerate(sections)}
    table_hosts = []
    for t in tables:
        hs = set()
        for row in t.rows:
            try:
                hs.add(normalise_cells(row)["host"])
            except CatalogError:
                continue
        table_hosts.append(hs)
    scores = []
    for ti, hs in enumerate(table_hosts):
        for sid, shs in hosts_of.items():
            union = hs | shs
            if union and hs & shs:
                score = float(len(hs & shs)) / len(union)
                scores.append((-score, abs(order[sid] - ti), ti, sid))
    scores.sort()
    mapping, used = {}, set()
    for _neg, _dist, ti, sid in scores:
        if ti in mapping or sid in used:
            continue
        mapping[ti] = sid
        used.add(sid)
    return [mapping.get(i) for i in range(len(tables))]


def _slug(text):
    words = re.findall(r"[a-z0-9]+", fold(text))
    return "_".join(words)[:48] or "section"


def article_entries(tables, sections):
    """Catalog-shaped rows from parsed tables.

    ``sections`` are the catalog's article sections (``id``, ``hosts``).
    Returns ``(entries, problems)``: each entry has ``service``, ``section_title``
    and the fields of :func:`normalise_cells`; a row that cannot be read is a
    problem (with its location), not a silent drop.
    """
    ids = _match_sections(tables, sections)
    entries, problems = [], []
    for table, sid in zip(tables, ids):
        service = sid or "new_" + _slug(table.title())
        for n, row in enumerate(table.rows):
            if len([c for c in row if c]) < 3:
                continue
            extra = [c for c in row[N_COLUMNS:] if c]
            try:
                entry = normalise_cells(row)
            except CatalogError as exc:
                problems.append("%s (%s), row %d: %s" % (table.title(), table.where, n + 1, exc))
                continue
            if extra:
                problems.append("%s (%s), row %d: cells past the sixth column ignored: %s"
                                % (table.title(), table.where, n + 1, " | ".join(extra)))
            entry["service"] = service
            entry["section_title"] = table.title()
            entry["new_section"] = sid is None
            entries.append(entry)
    return entries, problems


def diff_entries(bundled, parsed):
    """Compare bundled article entries with parsed ones, keyed by (service, host).

    Returns ``{"added": [...], "removed": [...], "changed": [...], "unchanged": N}``;
    a changed row lists ``{"field": {"before": ..., "after": ...}}``.
    """
    def key(e):
        return (e["service"], e["host"])

    before = {}
    for e in bundled:
        before.setdefault(key(e), e)
    after = {}
    for e in parsed:
        after.setdefault(key(e), e)
    added = [_brief(after[k]) for k in after if k not in before]
    removed = [_brief(before[k]) for k in before if k not in after]
    changed = []
    unchanged = 0
    for k in before:
        if k not in after:
            continue
        fields = {}
        for f in COMPARED_FIELDS:
            if before[k].get(f) != after[k].get(f):
                fields[f] = {"before": before[k].get(f), "after": after[k].get(f)}
        if fields:
            changed.append({"service": k[0], "host": k[1], "changes": fields})
        else:
            unchanged += 1
    return {"added": added, "removed": removed, "changed": changed, "unchanged": unchanged}


def _brief(e):
    out = {"service": e["service"], "host": e["host"]}
    for f in COMPARED_FIELDS:
        out[f] = e.get(f)
    if e.get("section_title"):
        out["section_title"] = e["section_title"]
    return out


def _on_page(page, names):
    """Whether one of ``names`` is written on ``page`` (lower-cased) as a whole name."""
    for name in names:
        name = (name or "").lower()
        if not name:
            continue
        at = page.find(name)
        while at != -1:
            before = page[at - 1] if at else " "
            after = page[at + len(name)] if at + len(name) < len(page) else " "
            if not (before.isalnum() or before in "._-") and not (after.isalnum() or after in "_-"):
                return True
            at = page.find(name, at + 1)
    return False


def refresh_report(text, catalog, source="the page"):
    """Parse ``text`` and report how it differs from ``catalog``'s article rows."""
    tables = parse_article(text, source)
    article = [s for s in catalog.services if s.get("source") == "apple_article"]
    sections = [{"id": s["id"], "hosts": [e["host"] for e in catalog.entries if e["service"] == s["id"]]}
                for s in article]
    parsed, problems = article_entries(tables, sections)
    bundled = [e for e in catalog.entries if e.get("source") == "apple_article"]
    diff = diff_entries(bundled, parsed)
    # A catalog row missing from what we read but whose host is on the page was
    # not read, not removed: report it as unreadable.
    page = (text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text).lower()
    read_hosts = set(e["host"] for e in parsed)
    removed = []
    for r in diff["removed"]:
        written = [e["as_written"]["host"] for e in bundled if e["service"] == r["service"] and e["host"] == r["host"]]
        if _on_page(page, [r["host"]] + written):
            problems.append("%s (%s): on the page but in no table row we could read%s; check this row by hand"
                            % (r["host"], r["service"], " (read in another table)" if r["host"] in read_hosts else ""))
        else:
            removed.append(r)
    diff["removed"] = removed
    diff["problems"] = problems
    diff["tables"] = len(tables)
    diff["rows"] = len(parsed)
    diff["differs"] = bool(diff["added"] or diff["removed"] or diff["changed"])
    return diff
