"""Processes: spawning with a parent-death signal, the guardian that stops orphans, the exec launcher, the sweep of
killed sessions' temp directories, and the children's capped log files.
"""
