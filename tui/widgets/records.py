"""The Records tab: ECREATE/EADD/EEXTEND records of a measurement plan, virtualised.

Nothing is materialised per record: :class:`RecordSelection` maps a visible row to a stream
index arithmetically (per run: one EADD per page, sixteen EEXTENDs per measured page) and the
table asks ``MeasurementPlan.record_at`` only for the rows on screen, so a 1 GiB image (millions
of records) scrolls as smoothly as the sample. Rows show offset, SECINFO flags, the layout
region and, for image pages, the ELF segment and section.
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Select, Static

from core.enclave import PageLocation
from core.layout import Layout
from core.records import CHUNK_SIZE, CHUNKS_PER_PAGE, MeasurementPlan, Record, secinfo_text

KIND_ALL = "all"
KINDS = ("ECREATE", "EADD", "EEXTEND")
REGION_ALL = "all"
MAX_THREAD_FILTERS = 64
_THREAD_PREFIX = re.compile(r"^thread (\d+) (.*)$")


def region_group(run_region: str) -> tuple[str, int | None]:
    """``"thread 3 stack"`` → ``("stack", 3)``; ``"image"`` → ``("image", None)``."""
    match = _THREAD_PREFIX.match(run_region)
    if match:
        return match.group(2), int(match.group(1))
    return run_region, None


def region_filter_options(plan: MeasurementPlan) -> list[tuple[str, str]]:
    """(label, value) choices for the region filter of ``plan``."""
    options: list[tuple[str, str]] = [("all regions", REGION_ALL)]
    groups: list[str] = []
    threads: list[int] = []
    for run in plan.runs:
        group, thread = region_group(run.region)
        if group not in groups:
            groups.append(group)
        if thread is not None and thread not in threads:
            threads.append(thread)
    for group in groups:
        label = f"every thread's {group}" if any(
            region_group(run.region) == (group, 0) for run in plan.runs) else group
        options.append((label, f"group:{group}"))
    for thread in threads[:MAX_THREAD_FILTERS]:
        options.append((f"thread {thread}", f"thread:{thread}"))
    return options


class RecordSelection:
    """The records of ``plan`` passing a region and kind filter, addressable by row.

    Args:
        plan: the measurement plan.
        region: ``"all"``, ``"group:<name>"`` or ``"thread:<n>"``.
        kind: ``"all"`` or one of ECREATE, EADD, EEXTEND.
    """

    def __init__(self, plan: MeasurementPlan, region: str = REGION_ALL, kind: str = KIND_ALL) -> None:
        self.plan = plan
        self.region = region
        self.kind = kind
        self._include_ecreate = region == REGION_ALL and kind in (KIND_ALL, "ECREATE")
        self._runs: list[int] = []  # run indices included
        self._starts: list[int] = []  # first row of each included run
        self._record_starts: list[int] = []  # stream index of each included run's first record
        row = 1 if self._include_ecreate else 0
        stream = 1
        for index, run in enumerate(plan.runs):
            if self._matches(run.region):
                count = self._count(run.pages, run.measured)
                if count:
                    self._runs.append(index)
                    self._starts.append(row)
                    self._record_starts.append(stream)
                    row += count
            stream += run.record_count
        self.count = row  # rows in the selection

    def _matches(self, run_region: str) -> bool:
        if self.region == REGION_ALL:
            return True
        group, thread = region_group(run_region)
        if self.region.startswith("group:"):
            return group == self.region.removeprefix("group:")
        if self.region.startswith("thread:"):
            return thread is not None and str(thread) == self.region.removeprefix("thread:")
        return False

    def _count(self, pages: int, measured: bool) -> int:
        per_page = 1 + CHUNKS_PER_PAGE if measured else 1
        if self.kind == KIND_ALL:
            return pages * per_page
        if self.kind == "EADD":
            return pages
        if self.kind == "EEXTEND":
            return pages * CHUNKS_PER_PAGE if measured else 0
        return 0

    def stream_index(self, row: int) -> int:
        """Stream position (``record_at`` index) of visible ``row``."""
        if not 0 <= row < self.count:
            raise IndexError(row)
        if self._include_ecreate:
            if row == 0:
                return 0
        position = bisect.bisect_right(self._starts, row) - 1
        run = self.plan.runs[self._runs[position]]
        within = row - self._starts[position]
        first = self._record_starts[position]
        per_page = 1 + CHUNKS_PER_PAGE if run.measured else 1
        if self.kind == KIND_ALL:
            return first + within
        if self.kind == "EADD":
            return first + within * per_page
        page, chunk = divmod(within, CHUNKS_PER_PAGE)  # EEXTEND
        return first + page * per_page + 1 + chunk

    def record(self, row: int) -> Record:
        """The record shown at ``row``."""
        return self.plan.record_at(self.stream_index(row))


Locator = Callable[[int], PageLocation]

HEADER_STYLE = Style(bold=True, underline=True)
HIGHLIGHT_STYLE = Style(reverse=True, bold=True)
KIND_STYLES = {"ECREATE": Style(color="#ffd700", bold=True), "EADD": Style(color="#5fafff"),
               "EEXTEND": Style(color="#767676")}


class RecordsTable(ScrollView, can_focus=True):
    """Line-API table over a :class:`RecordSelection` (rendered on demand)."""

    DEFAULT_CSS = """
    RecordsTable { height: 1fr; background: $surface; }
    RecordsTable:focus { background-tint: $foreground 3%; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selection: RecordSelection | None = None
        self.image_end = 0  # offsets below this are image pages (segment/section shown)
        self._locate: Locator | None = None
        self._places: OrderedDict[int, str] = OrderedDict()
        self._offset_width = 10
        self.highlight: int | None = None  # stream index of the record marked (a diff's divergence)

    def show(self, selection: RecordSelection, *, image_end: int, locate: Locator | None) -> None:
        """Show ``selection``; ``locate`` names segment/section for image pages."""
        self.selection = selection
        self.image_end = image_end
        self._locate = locate
        self._places.clear()
        self._offset_width = max(10, len(f"{selection.plan.size:#x}"))
        self.virtual_size = Size(self._row_width(), selection.count + 1)
        self.scroll_to(y=min(self.scroll_y, max(0, selection.count + 1 - self.size.height)), animate=False)
        self.refresh()

    def _row_width(self) -> int:
        return 11 + 8 + self._offset_width + 1 + 9 + 21 + 40

    def _place(self, offset: int) -> str:
        chunk = offset & ~(CHUNK_SIZE - 1)
        if chunk >= self.image_end or self._locate is None:
            return ""
        cached = self._places.get(chunk)
        if cached is None:
            location = self._locate(chunk)
            parts = [part for part in (location.segment, location.section) if part]
            cached = " ".join(parts)
            self._places[chunk] = cached
            if len(self._places) > 4096:
                self._places.popitem(last=False)
        return cached

    def _cells(self, record: Record) -> list[tuple[str, Style | None]]:
        flags = secinfo_text(record.flags) if record.kind != "ECREATE" else ""
        if record.kind == "ECREATE":
            plan = self.selection.plan if self.selection else None
            region = f"SIZE {plan.size:#x} SSAFRAMESIZE {plan.ssaframesize}" if plan else ""
            where = ""
        else:
            region = record.region
            where = self._place(record.offset)
        return [
            (f"{record.index:>10,} ", None),
            (f"{record.kind:<8}", KIND_STYLES.get(record.kind)),
            (f"{record.offset:#0{self._offset_width}x} ", None),
            (f"{flags:<9}", None),
            (f"{region:<21.21}", None),
            (where, Style(dim=True)),
        ]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            header = [
                ("    record ", HEADER_STYLE), ("kind    ", HEADER_STYLE),
                ("offset".ljust(self._offset_width) + " ", HEADER_STYLE), ("flags    ", HEADER_STYLE),
                ("region".ljust(21), HEADER_STYLE), ("segment / section", HEADER_STYLE),
            ]
            return self._strip(header, scroll_x, width)
        row = scroll_y + y - 1
        if self.selection is None or row >= self.selection.count:
            return Strip.blank(width, self.rich_style)
        record = self.selection.record(row)
        strip = self._strip(self._cells(record), scroll_x, width)
        if self.highlight is not None and record.index == self.highlight:
            strip = strip.apply_style(HIGHLIGHT_STYLE)
        return strip

    def scroll_to_record(self, index: int) -> None:
        """Mark stream record ``index`` and scroll it into view (a few rows below the top).

        The selection must show every record (no filter): rows are then stream indices.
        """
        self.highlight = index
        self.scroll_to(y=max(0, index - 3), animate=False, immediate=True)
        self.refresh()

    def _strip(self, cells: list[tuple[str, Style | None]], scroll_x: int, width: int) -> Strip:
        base = self.rich_style
        segments = [Segment(text, base + style if style else base) for text, style in cells]
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, base)

    def visible_rows(self) -> list[Record]:
        """The records currently on screen (for tests)."""
        if self.selection is None:
            return []
        first = int(self.scroll_y)
        last = min(self.selection.count, first + max(self.size.height - 1, 0))
        return [self.selection.record(row) for row in range(first, last)]


class RecordsView(Vertical):
    """Filter bar and the virtualised records table."""

    DEFAULT_CSS = """
    RecordsView #records-filters { height: 1; margin-bottom: 1; }
    RecordsView Select { width: 28; margin-right: 1; }
    RecordsView #records-kind { width: 16; }
    RecordsView #records-count { width: 1fr; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.layout_shown: Layout | None = None
        self._locate: Callable[[int, Layout], PageLocation] | None = None
        self._region_options: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="records-filters"):
            yield Select([("all regions", REGION_ALL)], value=REGION_ALL, allow_blank=False,
                         id="records-region", compact=True)
            yield Select([("all kinds", KIND_ALL), *((kind, kind) for kind in KINDS)], value=KIND_ALL,
                         allow_blank=False, id="records-kind", compact=True)
            yield Static("", id="records-count")
        yield RecordsTable(id="records-table")

    def show(self, layout: Layout, locate: Callable[[int, Layout], PageLocation] | None) -> None:
        """Show the records of ``layout``'s plan (filters are kept when still meaningful)."""
        self.layout_shown = layout
        self._locate = locate
        options = region_filter_options(layout.plan)
        select = self.query_one("#records-region", Select)
        if options != self._region_options:
            current = select.value
            self._region_options = options
            with select.prevent(Select.Changed):
                select.set_options(options)
                values = [value for _label, value in options]
                select.value = current if current in values else REGION_ALL
        self._refilter()

    def jump_to(self, index: int) -> None:
        """Clear the filters and show stream record ``index`` marked (clamped to the stream)."""
        if self.layout_shown is None:
            return
        index = max(0, min(index, self.layout_shown.plan.record_count - 1))
        for selector, value in (("#records-region", REGION_ALL), ("#records-kind", KIND_ALL)):
            select = self.query_one(selector, Select)
            if select.value != value:
                with select.prevent(Select.Changed):
                    select.value = value
        self._refilter()
        table = self.query_one(RecordsTable)
        table.scroll_to_record(index)
        table.focus()

    @on(Select.Changed)
    def _filter_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._refilter()

    def _refilter(self) -> None:
        layout = self.layout_shown
        if layout is None:
            return
        region = self.query_one("#records-region", Select).value
        kind = self.query_one("#records-kind", Select).value
        selection = RecordSelection(layout.plan, str(region), str(kind))
        self.query_one("#records-count", Static).update(
            Text(f"{selection.count:,} of {layout.plan.record_count:,} records · {layout.variant.upper()}"))
        locate = self._locate
        self.query_one(RecordsTable).show(
            selection, image_end=layout.image.end,
            locate=(lambda offset: locate(offset, layout)) if locate is not None else None)
