"""Full-text search latency at 10k and 100k messages (p50/p99 over varied queries), against a
bare `SELECT 1` in the same run.

    .venv/bin/python bench/search.py [--sizes 10000,100000] [--queries 200]

Data: 50 users in 5 teams, conversations of 10 messages of generated prose, a third shared with
the owner's team. Each query runs as a random user through `conversations.search.search`
(visibility filter, ranking, highlighted snippets), so it measures what the search page does.
Uses DATABASE_URL, or an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import percentile, setup_django  # noqa: E402

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ter",
    "vos",
    "an",
    "dre",
    "pul",
    "shi",
    "gon",
    "ri",
    "tem",
    "bal",
    "nu",
    "zor",
]
# A vocabulary of 5,000 pseudo-words used with a Zipf-like frequency, like real prose.
WORDS = sorted(
    {"".join(random.Random(i).choices(SYLLABLES, k=3)) + str(i % 7) for i in range(5000)}
)
WEIGHTS = [1 / (rank + 1) for rank in range(len(WORDS))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    from chatsite.launcher import Supervisor

    supervisor = Supervisor()
    try:
        setup_django(supervisor, "bench-search")
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        from conversations import search
        from conversations.models import Conversation, Message, ModelConfig, Team, User

        rng = random.Random(1)
        model = ModelConfig.objects.get(name="deepseek-chat")
        print(
            f"{'messages':>9} {'SELECT 1 p50':>13} {'search p50':>11} {'search p99':>11} {'hits/query':>11}"
        )
        for size in [int(s) for s in args.sizes.split(",")]:
            Message.objects.all().delete()
            Conversation.objects.all().delete()
            Team.objects.all().delete()
            User.objects.filter(username__startswith="bench-").delete()
            users = User.objects.bulk_create([User(username=f"bench-{i}") for i in range(50)])
            teams = Team.objects.bulk_create([Team(name=f"team-{i}") for i in range(5)])
            for i, user in enumerate(users):
                teams[i % 5].members.add(user)
            conversations = Conversation.objects.bulk_create(
                [
                    Conversation(
                        owner=users[i % 50],
                        model=model,
                        title=" ".join(rng.choices(WORDS, WEIGHTS, k=4)),
                        visibility="team" if i % 3 == 0 else "private",
                        team=teams[(i % 50) % 5] if i % 3 == 0 else None,
                    )
                    for i in range(size // 10)
                ]
            )
            batch = []
            for conversation in conversations:
                for j in range(10):
                    text = " ".join(rng.choices(WORDS, WEIGHTS, k=rng.randint(20, 80))) + "."
                    batch.append(
                        Message(
                            conversation=conversation,
                            role="user" if j % 2 == 0 else "assistant",
                            content=text,
                        )
                    )
                if len(batch) >= 5000:
                    Message.objects.bulk_create(batch)
                    batch = []
            Message.objects.bulk_create(batch)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            baseline, timings, hits = [], [], []
            for _ in range(args.queries):
                started = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                baseline.append(time.perf_counter() - started)
                user = rng.choice(users)
                # Two words a user would search for: not the commonest, not unseen ones.
                words = " ".join(rng.choices(WORDS[20:2000], WEIGHTS[20:2000], k=2))
                started = time.perf_counter()
                found = search.search(user, words, rng.choice(["all", "mine", "team"]))
                timings.append(time.perf_counter() - started)
                hits.append(len(found))
            print(
                f"{Message.objects.count():>9} {statistics.median(baseline) * 1e3:>11.3f}ms {statistics.median(timings) * 1e3:>9.1f}ms "
                f"{percentile(timings, 0.99) * 1e3:>9.1f}ms {statistics.mean(hits):>11.1f}"
            )
        Message.objects.all().delete()
        Conversation.objects.all().delete()
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
