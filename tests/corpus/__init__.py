"""A labelled corpus of recorded sessions: the diagnosis's accuracy, measured offline in seconds.

`cases.py` says what each run is and which findings are right for it; `record.py` records them on the real stack
(`python -m tests.corpus.record`, about 25 s a run); `score.py` replays every log through the diagnosis and prints
precision and recall per finding (`python -m tests.corpus.score`); tests/unit/test_corpus.py holds the targets.
"""
