"""With Redis, a socket that hears nothing for a while keeps listening (redis-py 8's default
5 s read timeout equals channels_redis's blocking pop and used to fail every idle receive)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers import redis_url

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import asyncio, django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
django.setup()
from channels.layers import get_channel_layer

async def main():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    try:
        await asyncio.wait_for(layer.receive(channel), 7)
    except asyncio.TimeoutError:
        print("still listening")

asyncio.run(main())
"""


def test_an_idle_receive_on_redis_keeps_listening_past_the_blocking_pop() -> None:
    env = {
        **os.environ,
        "DEBUG": "1",
        "REDIS_URL": redis_url(),
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://x@127.0.0.1/x"),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "still listening", result.stderr[-2000:]
