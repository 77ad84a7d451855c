"""The sheet: reading CSV and XLSX exactly as Excel shows them (loader, readers, number
formats) and validating every row before anything is sent."""
