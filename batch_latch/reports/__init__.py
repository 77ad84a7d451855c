"""Reports: the result columns and outcome records, the CSV and XLSX writers, summary.json
and the summary printed at the end."""
