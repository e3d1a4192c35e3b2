"""The headless core: the Session that owns the children and measures once a second, the plan runner of sweeps,
crash watching and spreading the load over the workers.
"""
