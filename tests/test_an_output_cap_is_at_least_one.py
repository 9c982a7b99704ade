"""An output cap ("Max output tokens", a policy's or a user's own "Limit to") is at least 1
token; blank is no cap.

0 could be saved on both forms, the policy's warning then speaking of "up to 4,096 output
tokens" as if it were no cap; the user read "up to 0 output tokens" on /usage/ and "up to
4,096 for the reply" in the composer; every chat message was refused ("max_tokens may be at
most 0"), and an API call without max_tokens was admitted, sent upstream with max_tokens 0
and failed with the provider's 400, counted against the minute's requests. Now 0 is refused
by both forms and the database, the 0s stored before are made blank (migration 0030), and no
call is admitted, so none sent upstream, with a max_tokens below 1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from conversations import quota
from conversations.errors import InvalidParameter
from conversations.models import (
    Conversation,
    ModelConfig,
    Policy,
    UsageRecord,
    User,
    UserLimits,
)
from tests.support import admin_form, client_for, open_socket
from tests.test_api_support import assert_envelope, bearer, chat, make_key, settled_record

POLICY_ADD = "/admin/conversations/policy/add/"


def user_page(user: User) -> str:
    return f"/admin/conversations/user/{user.pk}/change/"


def small_policy(**fields: Any) -> Policy:
    return Policy.objects.create(name="Small", tokens_per_day=3000, **fields)


def number_input(page: str, name: str) -> str:
    """The attributes of the page's one input named ``name``."""
    (tag,) = [tag for tag in page.split("<input")[1:] if f'name="{name}"' in tag.split(">")[0]]
    return tag.split(">")[0]


def add_policy(staff: User, cap: str) -> Any:
    """The policy "Small" (tokens per day 3,000), added on the admin's page with ``cap``
    typed as its "Max output tokens"."""
    client = client_for(staff)
    form = admin_form(
        client, POLICY_ADD, name="Small", tokens_per_day="3000", max_output_tokens=cap
    )
    form["all_models"] = "on"
    return client.post(POLICY_ADD, form)


@pytest.mark.django_db
def test_the_policy_form_refuses_0_and_saves_1_and_blank(staff: User) -> None:
    refused = add_policy(staff, "0")
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert list(errors) == ["max_output_tokens"], errors
    assert errors["max_output_tokens"] == [
        "The output cap is at least 1 token: leave it blank for no cap."
    ]
    assert not Policy.objects.filter(name="Small").exists()
    page = client_for(staff).get(POLICY_ADD).content.decode()
    assert 'min="1"' in number_input(page, "max_output_tokens")

    assert add_policy(staff, "1").status_code == 302
    assert Policy.objects.get(name="Small").max_output_tokens == 1
    Policy.objects.filter(name="Small").delete()
    assert add_policy(staff, "").status_code == 302
    assert Policy.objects.get(name="Small").max_output_tokens is None


@pytest.mark.django_db
def test_the_users_limits_form_refuses_0_and_saves_1_and_inherit(staff: User, alice: User) -> None:
    UserLimits.objects.create(user=alice)
    client = client_for(staff)
    page = client.get(user_page(alice)).content.decode()
    assert 'min="1"' in number_input(page, "limits-0-max_output_tokens")
    assert 'min="0"' in number_input(page, "limits-0-tokens_per_day")  # the others' stay

    def save(choice: str, number: str) -> Any:
        form = admin_form(
            client,
            user_page(alice),
            **{
                "limits-0-max_output_tokens_choice": choice,
                "limits-0-max_output_tokens": number,
            },
        )
        return client.post(user_page(alice), form)

    refused = save("number", "0")
    assert refused.status_code == 200
    (formset,) = [f.formset for f in refused.context["inline_admin_formsets"]]
    errors = formset.forms[0].errors
    assert list(errors) == ["max_output_tokens"], errors
    assert errors["max_output_tokens"] == [
        "The output cap is at least 1 token: for no cap choose “Unlimited”, or “Inherit from "
        "the policy” for the policy's."
    ]
    assert UserLimits.objects.get(user=alice).override("max_output_tokens") is None

    assert save("number", "1").status_code == 302
    assert UserLimits.objects.get(user=alice).override("max_output_tokens") == 1
    assert save("inherit", "").status_code == 302
    assert UserLimits.objects.get(user=alice).override("max_output_tokens") is None


@pytest.mark.django_db
def test_the_database_refuses_0(alice: User) -> None:
    policy = small_policy(max_output_tokens=5)
    limits = UserLimits.objects.create(user=alice, max_output_tokens=5)
    for rows in (Policy.objects.filter(pk=policy.pk), UserLimits.objects.filter(pk=limits.pk)):
        with (
            pytest.raises(IntegrityError, match="max_output_tokens_at_least_one"),
            transaction.atomic(),
        ):
            rows.update(max_output_tokens=0)
        assert rows.update(max_output_tokens=1) == 1
        assert rows.update(max_output_tokens=None) == 1


# --- the 0s stored before ----------------------------------------------------------------------

BEFORE = ("conversations", "0028_a_take_back_keeps_to_the_users_models")
AFTER = ("conversations", "0030_an_output_cap_is_at_least_one")


def migrate_to(target: tuple[str, str]) -> Any:
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def enforced_cap(user_id: int) -> int | None:
    """The user's output cap as the installed ``usage_limits`` resolves it for admission."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT max_output_tokens FROM usage_limits(%s, NULL)", [user_id])
        cap: int | None = cursor.fetchone()[0]
        return cap


@pytest.fixture
def latest_after() -> Iterator[None]:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("conversations")
    yield
    MigrationExecutor(connection).migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_the_0s_stored_before_become_blank_and_nothing_else_changes(
    latest_after: None,
) -> None:
    old = migrate_to(BEFORE)
    policy = old.get_model("conversations", "Policy")
    limits = old.get_model("conversations", "UserLimits")
    user = old.get_model("conversations", "User")
    group = old.get_model("auth", "Group")
    policy.objects.all().delete()
    policy.objects.create(name="Default", is_default=True, tokens_per_day=3000, max_output_tokens=0)
    capped = policy.objects.create(name="Capped", tokens_per_day=3000, max_output_tokens=700)
    members = group.objects.create(name="capped")
    capped.groups.add(members)
    own_0 = user.objects.create(username="own-0")  # the default policy's 0, and their own 0
    limits.objects.create(user=own_0, max_output_tokens=0, tokens_per_day=50)
    member_0 = user.objects.create(username="member-0")  # their own 0 over the group's 700
    member_0.groups.add(members)
    limits.objects.create(user=member_0, max_output_tokens=0)
    own_5 = user.objects.create(username="own-5")
    limits.objects.create(user=own_5, max_output_tokens=5)
    unlimited = user.objects.create(username="unlimited")
    limits.objects.create(user=unlimited, max_output_tokens_unlimited=True)
    fields = ("name", "tokens_per_day", "max_output_tokens")
    policies_before = {p["name"]: p for p in policy.objects.values(*fields)}
    limits_before = {row["user_id"]: row for row in limits.objects.values()}

    new = migrate_to(AFTER)
    policies = {
        p["name"]: p for p in new.get_model("conversations", "Policy").objects.values(*fields)
    }
    assert policies == {
        **policies_before,
        "Default": {**policies_before["Default"], "max_output_tokens": None},
    }
    rows = {
        row["user_id"]: row for row in new.get_model("conversations", "UserLimits").objects.values()
    }
    assert rows == {
        **limits_before,
        own_0.pk: {**limits_before[own_0.pk], "max_output_tokens": None},
        member_0.pk: {**limits_before[member_0.pk], "max_output_tokens": None},
    }
    # What admission enforces now: the policy's value where the user's own was 0.
    assert enforced_cap(own_0.pk) is None  # the default policy's, now no cap
    assert enforced_cap(member_0.pk) == 700
    assert enforced_cap(own_5.pk) == 5
    assert enforced_cap(unlimited.pk) is None


# --- a cap of 1, in the chat and over the API --------------------------------------------------


def capped_at_one(user: User) -> None:
    """``user``'s one group carries the policy "Small": tokens per day 3,000, an output cap of 1."""
    group = Group.objects.create(name="small")
    user.groups.add(group)
    small_policy(max_output_tokens=1).groups.add(group)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_the_api_sends_a_cap_of_1_and_refuses_more(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    capped_at_one(alice)
    key = make_key(alice)

    answered = chat(base, bearer(key))  # no max_tokens: the model's default within the cap
    assert answered.status_code == 200, answered.text
    assert answered.json()["usage"]["completion_tokens"] == 1
    assert answered.json()["choices"][0]["finish_reason"] == "length"
    assert settled_record(purpose="api").outcome == "complete"
    assert chat(base, bearer(key), max_tokens=1).status_code == 200

    error = assert_envelope(chat(base, bearer(key), max_tokens=2), 400, "invalid_request_error")
    assert (error["param"], error["message"]) == (
        "max_tokens",
        "max_tokens may be at most 1 under your limits.",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_the_chat_sends_a_cap_of_1_and_refuses_more(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    await sync_to_async(capped_at_one)(alice)
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "hello"})
    end = await socket.until_reply_ends()
    assert (end["type"], end["finish_reason"]) == ("reply.completed", "length")
    await socket.send(
        {"type": "message.send", "client_id": "c2", "content": "more", "params": {"max_tokens": 2}}
    )
    error = await socket.until_type("error")
    await socket.close()
    assert (error["code"], error["param"], error["message"]) == (
        "invalid_parameter",
        "max_tokens",
        "max_tokens may be at most 1 under your limits.",
    )
    record = await UsageRecord.objects.aget(purpose=UsageRecord.Purpose.CHAT)
    assert (record.outcome, record.completion_tokens) == ("complete", 1)


@pytest.mark.django_db
def test_the_usage_page_says_a_cap_of_1(alice: User, chat_model: ModelConfig) -> None:
    capped_at_one(alice)
    page = client_for(alice).get("/usage/").content.decode()
    assert "<dt>Per request</dt><dd>up to 1 output token</dd>" in page


# --- no call is sent with a max_tokens below 1 -------------------------------------------------


@pytest.mark.django_db
def test_admission_refuses_a_max_tokens_below_1(alice: User, chat_model: ModelConfig) -> None:
    with pytest.raises(InvalidParameter, match="max_tokens must be at least 1") as refused:
        quota.admit(alice, chat_model, purpose="chat", prompt_tokens=10, max_tokens=0)
    assert refused.value.param == "max_tokens"
    assert not UsageRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_models_default_of_0_stored_past_its_form_is_not_sent(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    # The registry's form refuses it (ModelConfig.clean); a row written past it is refused at
    # admission, not sent for the provider to refuse.
    ModelConfig.objects.filter(pk=chat_model.pk).update(default_max_tokens=0)
    key = make_key(alice)
    response = chat(base, bearer(key))
    error = assert_envelope(response, 400, "invalid_request_error")
    assert (error["param"], error["message"]) == ("max_tokens", "max_tokens must be at least 1.")
    assert not UsageRecord.objects.exists()
