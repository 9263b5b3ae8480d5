"""Report: the self-contained HTML pages people read about a run, a search or a scoring (plotly). Its surface is
its modules."""

__all__ = ["describe", "document", "figures", "profile", "samples", "sections"]
