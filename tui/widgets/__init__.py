"""Widgets of the Textual inspector: they render what the main screen gives them."""
