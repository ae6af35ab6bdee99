"""`wgh report`: results → one self-contained HTML page and a Markdown summary.

inputs.py reads results (the only module that knows their layout), tables.py turns
them into rows, plots.py draws (matplotlib), html.py and markdown.py render,
command.py is the command line. Nothing is imported here: `wgh` builds its parser
from command.py on every start and must not pay for matplotlib."""
