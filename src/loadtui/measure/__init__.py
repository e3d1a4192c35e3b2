"""Measuring one second: the process and database collectors, the probe, remote workers' figures, py-spy stacks,
and the TickBuilder that puts them into a Tick.
"""
