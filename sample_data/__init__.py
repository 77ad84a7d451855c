"""The bundled sample spreadsheet, installed as package data for ``batch-latch demo``."""
