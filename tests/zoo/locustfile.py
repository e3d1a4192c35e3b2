"""Load for the zoo apps: every user asks for / as fast as it is answered."""

from locust import FastHttpUser, task


class Visitor(FastHttpUser):
    @task
    def index(self) -> None:
        self.client.get("/")
