"""The Layout tab: derived regions in address order and a proportional memory map.

The table lists every region (name, offset range, pages, permissions, treatment); with many
threads, threads beyond the first few are folded into one row. The map draws the whole enclave
(SIZE) in terminal cells, each cell one equal slice of the address space; a cell shows the most
important region touching it (measured before added before reserved) so that one-page regions
stay visible. The highlighted table row is highlighted on the map.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import DataTable, Static

from core.layout import Layout
from core.records import PAGE_SIZE, secinfo_text

THREADS_SHOWN = 8  # threads listed one by one; the rest are folded into one row

TREATMENT_TEXT = {"measured": "measured", "added": "added", "reserved": "reserved", "mixed": "mixed"}
TREATMENT_NOTE = ("measured = EADD + EEXTEND · added = EADD only, content not measured · "
                  "reserved = inside SIZE, not added")

# kind -> (map character, colour, legend label)
KIND_STYLE: dict[str, tuple[str, str, str]] = {
    "image": ("█", "#5fafff", "image"),
    "heap": ("▓", "#5fd75f", "heap"),
    "heap-reserved": ("░", "#5fd75f", "heap (run time)"),
    "stack": ("▒", "#d7af5f", "stack"),
    "tcs": ("█", "#ff5f5f", "TCS"),
    "ssa": ("█", "#d75fd7", "SSA"),
    "td": ("█", "#5fd7d7", "thread data"),
    "threads": ("▒", "#d7af5f", "threads"),
    "guard": ("┊", "#767676", "guard"),
    "params": ("█", "#ffffff", "signed params"),
    "unused": ("·", "#4e4e4e", "unused"),
}
PRIORITY = {"params": 9, "tcs": 8, "ssa": 7, "td": 7, "image": 6, "threads": 5, "stack": 4, "heap": 3,
            "heap-reserved": 2, "guard": 1, "unused": 0}
SELECTED_STYLE = Style(color="#ffd700", bold=True)


@dataclass(frozen=True, slots=True)
class RegionRow:
    """One row of the table (a region, or several threads folded together)."""

    name: str
    kind: str  # a Region.kind, or "threads" for a folded row
    offset: int  # bytes from enclave base
    end: int  # first byte after the row's range
    flags: int  # SECINFO flags (0 = not added)
    treatment: str  # measured | added | reserved | mixed

    @property
    def pages(self) -> int:
        """4 KiB pages covered."""
        return (self.end - self.offset) // PAGE_SIZE


def region_rows(layout: Layout) -> list[RegionRow]:
    """The table rows of ``layout``: regions in address order, later threads folded."""
    rows: list[RegionRow] = []
    folded_start: int | None = None
    folded_end = 0
    first_folded = last_folded = 0
    for region in layout.regions:
        if region.thread is not None and region.thread >= THREADS_SHOWN:
            if folded_start is None:
                folded_start, first_folded = region.offset, region.thread
            folded_end, last_folded = region.end, region.thread
            continue
        if folded_start is not None:
            rows.append(_folded(folded_start, folded_end, first_folded, last_folded))
            folded_start = None
        rows.append(RegionRow(region.name, region.kind, region.offset, region.end, region.flags,
                              region.treatment))
    if folded_start is not None:
        rows.append(_folded(folded_start, folded_end, first_folded, last_folded))
    return rows


def _folded(start: int, end: int, first: int, last: int) -> RegionRow:
    return RegionRow(f"threads {first}–{last} ({last - first + 1} × same shape)", "threads", start, end, 0,
                     "mixed")


class MemoryMap(Widget):
    """Proportional map of the enclave address space (see module docstring)."""

    DEFAULT_CSS = """
    MemoryMap { height: 1fr; min-height: 4; }
    """

    selected: reactive[int | None] = reactive(None)
    """Index into ``rows`` of the highlighted row."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[RegionRow] = []
        self.size_bytes = 0

    def show(self, rows: list[RegionRow], size: int) -> None:
        """Draw ``rows`` of an enclave of ``size`` bytes."""
        self.rows = rows
        self.size_bytes = size
        self.refresh()

    def watch_selected(self) -> None:
        self.refresh()

    def geometry(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(label width, columns, rows used, bytes per cell) for a ``width`` × ``height`` area.

        Bytes per cell is a power of two so that row labels are round numbers.
        """
        label_width = len(f"{max(self.size_bytes, 1):#x}") + 1
        columns = max(1, width - label_width)
        cells = columns * max(height, 1)
        cell_bytes = PAGE_SIZE
        while cell_bytes * cells < self.size_bytes:
            cell_bytes <<= 1
        rows = min(height, -(-self.size_bytes // (cell_bytes * columns))) if self.size_bytes else 0
        return label_width, columns, rows, cell_bytes

    def cells(self, count: int, cell_bytes: int) -> list[int | None]:
        """Row index shown in each of ``count`` cells of ``cell_bytes`` (None = nothing)."""
        result: list[int | None] = [None] * count
        best: list[int] = [-1] * count
        for index, row in enumerate(self.rows):
            first = row.offset // cell_bytes
            if first >= count:
                break
            last = min(count - 1, (row.end - 1) // cell_bytes)
            priority = PRIORITY.get(row.kind, 0)
            for cell in range(first, last + 1):
                if priority > best[cell]:
                    best[cell] = priority
                    result[cell] = index
        return result

    def render_lines_text(self, width: int, height: int) -> list[Text]:
        """The map as text lines (also used by tests)."""
        if not self.rows or not self.size_bytes or width <= 0 or height <= 0:
            return [Text("")]
        label_width, columns, rows, cell_bytes = self.geometry(width, height)
        cells = self.cells(columns * rows, cell_bytes)
        selected = self.selected
        marked: range = range(0)
        if selected is not None and 0 <= selected < len(self.rows):
            row = self.rows[selected]
            marked = range(row.offset // cell_bytes, (row.end - 1) // cell_bytes + 1)
        lines = []
        for line in range(rows):
            text = Text()
            start = line * columns
            text.append(f"{start * cell_bytes:#x}".rjust(label_width - 1) + " ", style="dim")
            for cell in range(start, start + columns):
                index = cells[cell]
                if index is None:
                    text.append(" ")
                    continue
                if cell in marked:
                    text.append("█", style=SELECTED_STYLE)
                    continue
                char, color, _label = KIND_STYLE.get(self.rows[index].kind, ("?", "white", ""))
                text.append(char, style=color)
            lines.append(text)
        return lines

    def render(self) -> Text:
        return Text("\n").join(self.render_lines_text(self.size.width, self.size.height))


def legend_text() -> Text:
    """The map's legend."""
    text = Text()
    for kind in ("image", "heap", "heap-reserved", "stack", "tcs", "ssa", "td", "guard", "params", "unused"):
        char, color, label = KIND_STYLE[kind]
        text.append(char, style=color)
        text.append(f" {label}  ")
    text.append("█", style=SELECTED_STYLE)
    text.append(" selected")
    return text


class LayoutView(Vertical):
    """Regions table and memory map of one layout."""

    DEFAULT_CSS = """
    LayoutView > DataTable { height: 1fr; }
    LayoutView #layout-note { height: auto; color: $text-muted; }
    LayoutView > Vertical { height: 45%; min-height: 6; border-top: solid $panel; }
    LayoutView #map-title { height: 1; text-style: bold; }
    LayoutView #map-legend { height: auto; color: $text-muted; }
    """

    class RegionSelected(Message):
        """The user highlighted a region."""

        def __init__(self, row: RegionRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[RegionRow] = []
        self.layout_shown: Layout | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="layout-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("region", "offset range", "pages", "perms", "treatment")
        yield table
        yield Static(TREATMENT_NOTE, id="layout-note")
        with Vertical():
            yield Static("", id="map-title")
            yield MemoryMap(id="memory-map")
            yield Static(legend_text(), id="map-legend")

    def show(self, layout: Layout) -> None:
        """Show ``layout``, keeping the highlighted row where possible."""
        table = self.query_one("#layout-table", DataTable)
        previous = table.cursor_row if self.rows else 0
        self.layout_shown = layout
        self.rows = region_rows(layout)
        table.clear()
        for row in self.rows:
            perms = secinfo_text(row.flags) if row.flags else "—"
            treatment = TREATMENT_TEXT.get(row.treatment, row.treatment)
            style = {"measured": "bold", "reserved": "dim"}.get(row.treatment, "")
            name = row.name if len(row.name) <= 26 else row.name[:25] + "…"
            table.add_row(
                Text(name, style=style),
                Text(f"{row.offset:#x}–{row.end:#x}", justify="right"),
                Text(f"{row.pages:,}", justify="right"),
                perms,
                Text(treatment, style=style),
            )
        self.query_one("#map-title", Static).update(
            f"{layout.variant.upper()} memory map, SIZE {layout.size:#x}")
        memory_map = self.query_one(MemoryMap)
        memory_map.show(self.rows, layout.size)
        row = min(previous, len(self.rows) - 1)
        if row >= 0:
            table.move_cursor(row=row)
            memory_map.selected = row

    @on(DataTable.RowHighlighted, "#layout-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.rows):
            self.query_one(MemoryMap).selected = event.cursor_row
            self.post_message(self.RegionSelected(self.rows[event.cursor_row]))
