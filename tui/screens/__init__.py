"""Screens of the Textual inspector: the main screen and its modal dialogs."""
