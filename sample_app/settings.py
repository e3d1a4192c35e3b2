"""Typed settings of the sample app, from `SAMPLE_APP_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the app reads once per worker at start-up."""

    model_config = SettingsConfigDict(env_prefix="SAMPLE_APP_")

    db_dsn: str = "postgresql://app@localhost:5432/app"
    """PostgreSQL connection string (libpq format or URI)."""
    db_mode: Literal["pool", "per-request"] = "pool"
    """`pool`: an AsyncConnectionPool per worker; `per-request`: a new connection for every request (the seed's
    naive version, which fails with "too many clients" under load)."""
    pool_min: int = Field(default=4, ge=0)
    """Connections each worker's pool keeps open."""
    pool_max: int = Field(default=10, ge=1)
    """Most connections each worker's pool opens."""
    pool_timeout: float = Field(default=30.0, gt=0)
    """Seconds a request waits for a pooled connection before failing."""
    sleep_ms: int = Field(default=50, ge=0)
    """The unit of work of the sleep scenarios and of the slow query, in milliseconds."""
    work_us: int = Field(default=0, ge=0, le=1_000_000)
    """CPU work added to every request, in microseconds: a deliberate slowdown (bench/baseline_gate.py slows the app
    by a known share to measure how well `loadtui compare` detects it)."""
