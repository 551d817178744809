"""Reviewers working through their queues, for locust (run by test_load.py).

`LOAD_PLAN` names a JSON file: for each reviewer, a signed-in session cookie, a CSRF token and
the items assigned to them with the version each was read at. Each simulated reviewer takes one
plan, opens their queue now and then, and decides their items one by one as the page's buttons
do (an htmx POST answered with the updated row). When locust stops, `LOAD_RESULT` receives how
many decisions were accepted and every status seen.
"""

import itertools
import json
import os
import random
import threading
from collections import Counter

from locust import HttpUser, between, events, task

with open(os.environ["LOAD_PLAN"]) as plan_file:
    PLANS = json.load(plan_file)
_next_plan = itertools.count()
_lock = threading.Lock()
accepted: list[str] = []
statuses: Counter = Counter()


class Reviewer(HttpUser):
    wait_time = between(0.5, 2.5)

    def on_start(self):
        with _lock:
            self.plan = PLANS[next(_next_plan) % len(PLANS)]
        self.items = iter(self.plan["items"])
        self.client.cookies.update(self.plan["cookies"])
        self.headers = {"X-CSRFToken": self.plan["csrf"], "HX-Request": "true"}

    @task(5)
    def decide(self):
        found = next(self.items, None)
        if found is None:
            self.queue()
            return
        uuid, version = found
        choice = random.choice(["keep", "revoke"])
        with self.client.post(
            f"/reviews/items/{uuid}/decide/",
            data={"decision": choice, "reason": "Reviewed under load.", "version": version},
            headers=self.headers,
            name="decide",
            catch_response=True,
            allow_redirects=False,
        ) as response:
            with _lock:
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    accepted.append(uuid)
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")

    @task(1)
    def queue(self):
        with self.client.get("/reviews/", name="queue", catch_response=True) as response:
            with _lock:
                statuses[response.status_code] += 1
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")


@events.quitting.add_listener
def _write_result(environment, **kwargs):
    with open(os.environ["LOAD_RESULT"], "w") as result:
        json.dump(
            {
                "accepted": accepted,
                "statuses": {str(code): n for code, n in sorted(statuses.items())},
            },
            result,
        )
