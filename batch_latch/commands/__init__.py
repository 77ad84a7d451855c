"""The commands on top: run, plan and dry run; undo; status; the demo."""
