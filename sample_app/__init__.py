"""The sample app: a small FastAPI + psycopg-pool service that reproduces every experiment of the seed articles.

Run it with `python -m sample_app --workers 2` (migrations first, then loadtui's launcher); settings come from
`SAMPLE_APP_*` environment variables (see :mod:`sample_app.settings`).
"""
