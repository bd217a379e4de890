"""The Segments tab: ELF program headers with the sections inside each segment.

A table of every program header (type, flags, offset, vaddr, filesz, memsz, align, sections) and,
below it, the sections of the highlighted segment with their addresses and sizes.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from core.elf import ElfImage


class SegmentsView(Vertical):
    """Program headers of an ELF image (see module docstring)."""

    DEFAULT_CSS = """
    SegmentsView > DataTable { height: 2fr; }
    SegmentsView > VerticalScroll { height: 1fr; border-top: solid $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._image: ElfImage | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="segments-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "type", "flags", "offset", "vaddr", "filesz", "memsz", "align", "sections")
        yield table
        with VerticalScroll():
            yield Static("", id="segment-sections")

    def show(self, image: ElfImage | None, note: str = "") -> None:
        """Fill the table from ``image`` (None: a file without ELF segments; ``note`` says what it is)."""
        self._image = image
        table = self.query_one("#segments-table", DataTable)
        table.clear()
        if image is None:
            self.query_one("#segment-sections", Static).update(Text(note or "no ELF segments", style="italic"))
            return
        for segment in image.segments:
            style = "bold" if segment.type_name == "LOAD" else ""
            table.add_row(
                str(segment.index), Text(segment.type_name, style=style), segment.flags_text,
                f"{segment.offset:#x}", f"{segment.vaddr:#x}", f"{segment.filesz:#x}", f"{segment.memsz:#x}",
                f"{segment.align:#x}", " ".join(segment.sections) or "—",
                key=str(segment.index),
            )
        self._show_sections(0)

    @on(DataTable.RowHighlighted, "#segments-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_sections(event.cursor_row)

    def _show_sections(self, row: int) -> None:
        detail = self.query_one("#segment-sections", Static)
        if self._image is None or not 0 <= row < len(self._image.segments):
            detail.update("")
            return
        segment = self._image.segments[row]
        text = Text()
        text.append(f"{segment.type_name}[{segment.index}] {segment.flags_text}  ", style="bold")
        text.append(f"vaddr {segment.vaddr:#x}–{segment.vaddr + segment.memsz:#x}\n")
        by_name = {section.name: section for section in self._image.sections}
        if not segment.sections:
            text.append("  no sections", style="italic")
        for name in segment.sections:
            section = by_name.get(name)
            if section is None:
                text.append(f"  {name}\n")
                continue
            text.append(f"  {name:<24}", style="cyan")
            text.append(f" {section.type_name:<10} addr {section.addr:#x}  size {section.size:#x}\n")
        detail.update(text)
