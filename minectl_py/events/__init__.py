"""The site event log: records, typed events, reading, writing, indexing and replay."""
