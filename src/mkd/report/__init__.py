"""The report of a run: summary.json's reader, report.html and report.md (write.py), their sections
(sections.py), figures (figures.py) and the plots they draw (plots.py)."""
