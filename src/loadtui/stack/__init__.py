"""The stack under test: embedded or external PostgreSQL, and the app's supervisor (uvicorn workers)."""
