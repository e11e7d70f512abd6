"""A decode's trace: the recorder the decoder drives, the trace.jsonl schema, its page and figure.

`recorder.py` (what the decoder calls), `records.py` (the records as trace.jsonl and read back
as rows of cells), `page.py` (trace.html), `figure.py` (trace.png), `files.py` (writing them).
The tasks write these files, so they sit below `tasks/` (report/ reads run directories through
tasks/ and so sits above it).
"""
