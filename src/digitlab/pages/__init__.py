"""Self-contained HTML pages: a run's report and the chapter's figures for a dataset."""
