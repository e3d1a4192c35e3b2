"""Users for bench/arrival_rate.py: one GET; each user paced to `PER_USER_RPS` requests a second (0: no pause)."""

import os

from locust import FastHttpUser, constant, constant_throughput, task

PER_USER_RPS = float(os.environ.get("PER_USER_RPS", "0"))


class Get(FastHttpUser):
    wait_time = constant_throughput(PER_USER_RPS) if PER_USER_RPS > 0 else constant(0)

    @task
    def get(self) -> None:
        self.client.get("/")
