"""Foreign apps: small FastAPI apps written without loadtui in mind (none imports it), one per classic bottleneck
plus healthy counterparts. The diagnosis must name each from outside (tests/integration/test_zoo.py)."""
