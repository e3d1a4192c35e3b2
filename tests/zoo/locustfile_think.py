"""Load for the zoo apps as people browse: each user asks for / and then thinks for 50-150 ms."""

from locust import FastHttpUser, between, task


class Reader(FastHttpUser):
    wait_time = between(0.05, 0.15)

    @task
    def index(self) -> None:
        self.client.get("/")
