"""Everything that runs from a session log without a session: the recorder and reader, segments and their summary,
SLOs and the verdict, run-against-run comparison, and the HTML/CSV report.
"""
