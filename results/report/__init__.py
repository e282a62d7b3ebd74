"""The reports: metrics, tables, exports, plots, the HTML page and status, read from the store."""
