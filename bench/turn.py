"""The cost of starting one chat turn (``actions.send_message``), in-process, against a bare
``SELECT 1`` round trip in the same run.

    .venv/bin/python bench/turn.py [--turns 300] [--branch 2] [--gap-ms 0,150]

Each turn is what a worker does between a ``message.send`` frame and starting the reply's
generation task: the conversation, the client id, the branch, the admission with the new rows
(4 statements). Every turn posts to a conversation of its own whose branch already holds
``--branch`` messages (alternating user / completed reply), so no turn waits on another's
reply. ``--gap-ms``: the machine is left idle that long before each timed turn (and before each
``SELECT 1``), as a worker whose turns arrive one at a time is; 0 runs them back to back.
Reported per gap: wall and CPU time per turn (p50/p99), and wall ÷ ``SELECT 1``.
Uses DATABASE_URL, or an embedded PostgreSQL like `make test`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import percentile, setup_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--branch", type=int, default=2, help="messages already on the branch")
    parser.add_argument("--gap-ms", default="0,150", help="idle time before each timed turn")
    args = parser.parse_args()
    gaps = [float(g) / 1000 for g in args.gap_ms.split(",")]

    from chatsite.launcher import Supervisor

    supervisor = Supervisor()
    try:
        setup_django(supervisor, "bench-turn")
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        from conversations import actions
        from conversations.models import Conversation, Message, ModelConfig, User, UserLimits

        user, _ = User.objects.get_or_create(username="bench-turn")
        UserLimits.objects.update_or_create(
            user=user,
            defaults={
                "tokens_per_day": 10**12,
                "tokens_per_month": 10**12,
                "requests_per_minute": 10**9,
                "concurrent_streams": 10**6,
            },
        )
        model = ModelConfig.objects.get(name="deepseek-chat")
        Conversation.objects.filter(owner=user).delete()
        warm = 20
        conversations: list[uuid.UUID] = []
        for _ in range(warm + args.turns * len(gaps)):
            conversation = Conversation.objects.create(owner=user, model=model, title="bench")
            parent = None
            for i in range(args.branch):
                if i % 2 == 0:
                    parent = Message.objects.create(
                        conversation=conversation,
                        parent=parent,
                        role=Message.Role.USER,
                        author=user,
                        content="What should we check before the release? " * 4,
                    )
                else:
                    parent = Message.objects.create(
                        conversation=conversation,
                        parent=parent,
                        role=Message.Role.ASSISTANT,
                        model=model,
                        status=Message.Status.COMPLETE,
                        content="The migrations, the changelog and the rollback plan. " * 8,
                    )
            conversations.append(conversation.id)
        connection.close()

        def turn(conversation_id: uuid.UUID) -> None:
            actions.send_message(
                user,
                conversation_id,
                client_id=str(uuid.uuid4()),
                content="And after the release? " * 4,
                channel="bench",
            )
            connection.close()  # as a worker's ORM thread does after each unit of work

        def select_one() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()

        for conversation_id in conversations[:warm]:
            turn(conversation_id)
        queue = iter(conversations[warm:])
        print(f"# send_message on a {args.branch}-message branch, {args.turns} turns per gap")
        print(
            "| idle before each | SELECT 1 p50 | turn wall p50 / p99 | turn CPU p50 / p99 "
            "| wall / SELECT 1 |"
        )
        print("| --- | --- | --- | --- | --- |")
        for gap in gaps:
            baseline: list[float] = []
            connection.ensure_connection()
            for _ in range(args.turns):
                time.sleep(gap)
                started = time.perf_counter()
                select_one()
                baseline.append(time.perf_counter() - started)
            connection.close()
            walls: list[float] = []
            cpus: list[float] = []
            for _ in range(args.turns):
                conversation_id = next(queue)
                time.sleep(gap)
                wall, cpu = time.perf_counter(), time.process_time()
                turn(conversation_id)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            base = statistics.median(baseline)
            print(
                f"| {gap * 1e3:.0f} ms | {base * 1e3:.3f} ms "
                f"| {statistics.median(walls) * 1e3:.2f} / {percentile(walls, 0.99) * 1e3:.2f} ms "
                f"| {statistics.median(cpus) * 1e3:.2f} / {percentile(cpus, 0.99) * 1e3:.2f} ms "
                f"| {statistics.median(walls) / base:.0f}x |",
                flush=True,
            )
        Conversation.objects.filter(owner=user).delete()
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
