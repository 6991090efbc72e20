"""STOP desktop recognizer (PySide6)."""
