"""batch-latch: latch Fusebill customers to Geotab Reseller Customer IDs from a spreadsheet."""

__version__ = "0.1.0"
