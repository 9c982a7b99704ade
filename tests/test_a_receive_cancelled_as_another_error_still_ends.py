"""A receive from the channel layer that is cancelled ends, even when the layer turns the
cancellation into another error: a Redis client's own timeout meeting the cancellation raises a
TimeoutError instead. The service took that for Redis being away and received again, so the
task outlived its cancellation, and closing its event loop (a worker's shutdown; in CI, a
test's teardown) waited for it until a timeout killed the test."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer

from conversations.generation import GenerationService

pytestmark = pytest.mark.django_db


class CancellationTurnedTimeout(InMemoryChannelLayer):
    """The layer of this process, but its first cancelled receive raises TimeoutError."""

    swallowed = 0

    async def receive(self, channel: str) -> dict[str, Any]:
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1
            raise TimeoutError from None


async def test_a_cancelled_receive_ends_though_the_layer_says_timeout() -> None:
    service = GenerationService()
    service.layer = CancellationTurnedTimeout()
    receiving = asyncio.ensure_future(service._receive("test.receive!one"))
    await asyncio.sleep(0.05)
    receiving.cancel()
    done, _ = await asyncio.wait({receiving}, timeout=2)
    if not done:
        receiving.cancel()  # not turned again: it ends, and the test says what went wrong
        await asyncio.wait({receiving}, timeout=2)
    assert done == {receiving}, "the receive went on after it was cancelled"
    assert receiving.cancelled()
    assert service.layer.swallowed == 1


class SendCancellationTurnedTimeout(InMemoryChannelLayer):
    """Its group sends wait, and the first cancelled one raises TimeoutError."""

    swallowed = 0

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1
            raise TimeoutError from None


async def test_a_publish_cancelled_as_another_error_is_cancelled() -> None:
    """Publishing to other workers is left when Redis is away; a cancellation the layer turned
    into a TimeoutError is not (its task, a reply being stopped, would have run on)."""
    service = GenerationService()
    service.layer = SendCancellationTurnedTimeout()
    service.single_process = False
    publishing = asyncio.ensure_future(service.publish("test.group", {"type": "x"}))
    await asyncio.sleep(0.05)
    publishing.cancel()
    done, _ = await asyncio.wait({publishing}, timeout=2)
    assert done == {publishing}
    assert publishing.cancelled(), "the publish took its cancellation for Redis being away"
