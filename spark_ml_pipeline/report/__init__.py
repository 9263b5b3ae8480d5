"""Report: the self-contained HTML pages people read about a run, a search or a scoring (plotly)."""
