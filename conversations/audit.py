"""The audit log: who changed a policy, a user's limits, a model, a key or a share, and how."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.apps import apps
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_save
from django.forms.models import model_to_dict

from conversations.models import (
    LIMIT_FIELDS,
    ApiKey,
    AuditEntry,
    Policy,
    ShareLink,
    User,
    UserLimits,
)

INHERITED = "inherited"

# The hashes of secrets: a key or a share link is named in the log by its other fields (a
# key's name, prefix, owner, expiry, revocation), never by what its secret hashes to, which
# anyone who reads or exports the log could test guesses against or match with a leaked key.
SECRET_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    ApiKey: ("hashed",),
    ShareLink: ("hashed",),
}


def snapshot(instance: models.Model | None) -> dict[str, Any] | None:
    """The instance's fields as JSON-safe data (many-to-many as sorted ids), never the hash
    of a secret (:data:`SECRET_FIELDS`); a user's own limits each as "inherited", "unlimited"
    or the number."""
    if instance is None or instance.pk is None:
        return None
    data = model_to_dict(instance, exclude=SECRET_FIELDS.get(type(instance), ()))
    for key, value in list(data.items()):
        if isinstance(value, list):
            data[key] = sorted(getattr(item, "pk", item) for item in value)
        elif isinstance(value, models.Model):
            data[key] = value.pk
    if isinstance(instance, UserLimits):
        # One value per limit, as the admin chose it (not a number and a flag to read together).
        for name in LIMIT_FIELDS:
            data.pop(f"{name}_unlimited", None)
            override = instance.override(name)
            data[name] = INHERITED if override is None else override
    result: dict[str, Any] = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    return result


def stored(instance: models.Model) -> dict[str, Any] | None:
    """:func:`snapshot` of the row as the database holds it: a form's instance keeps values as
    typed (a price of 0.14 where the column stores 0.1400), which would not compare equal to
    a before read from the database."""
    if instance.pk is None:
        return None
    return snapshot(type(instance)._default_manager.filter(pk=instance.pk).first())


#: Who made a change: an account, or (a string) what acted with none, a management command
#: ("manage.py ensure_admin"), named as the entry's actor.
Actor = User | AnonymousUser | str | None


def actor_fields(actor: Actor) -> dict[str, Any]:
    """The entry's ``actor`` and ``actor_name`` (the name outlives the account)."""
    if isinstance(actor, str):
        return {"actor": None, "actor_name": actor}
    user = actor if isinstance(actor, User) else None
    return {"actor": user, "actor_name": user.get_username() if user else ""}


def record(
    actor: Actor,
    action: str,
    instance: models.Model,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry | None:
    """Write one entry; nothing when nothing changed."""
    if before == after:
        return None
    return AuditEntry.objects.create(
        **actor_fields(actor),
        action=action,
        target_type=instance._meta.model_name or "",
        target_id=str(instance.pk),
        target_repr=named(instance)[:200],
        before=before,
        after=after,
    )


def named(instance: models.Model) -> str:
    """How an entry names its target (``target_repr``, which the log is searched by): as the
    row names itself, but an account, and its limits, by the name it signs in with as well
    as its full name. Named by the full name alone (``User.__str__``), the log searched for
    "dave" found nothing of David Smith's suspension, nor of any change made once his name
    was set."""
    if isinstance(instance, User):
        return _account_named(instance)
    if isinstance(instance, UserLimits):
        return f"Limits of {_account_named(instance.user)}"
    return str(instance)


def _account_named(user: User) -> str:
    full = user.get_full_name()
    return f"{user.username} ({full})" if full and full != user.username else user.username


def account(user: User | None) -> dict[str, Any] | None:
    """What the audit log keeps of a user account: the name it signs in with, its flags and
    grants (never the password; nor the e-mail and names, which sign in no one and would
    outlive the account here), and the policies its groups carry (by name): joining or
    leaving a group may change which policy sets the user's limits, and the entry says so."""
    data = snapshot(user)
    if data is None or user is None:
        return None
    kept = {
        k: data.get(k)
        for k in (
            "username",
            "is_active",
            "is_staff",
            "is_superuser",
            "groups",
            "user_permissions",
        )
    }
    carried = Policy.objects.filter(groups__user=user).values_list("name", flat=True)
    kept["group_policies"] = sorted(set(carried))
    return kept


def account_created(user: User) -> dict[str, Any]:
    """The "after" of an account's creation: :func:`account`, and whether it was created
    with a password or with password sign-in disabled (said, never kept)."""
    return {**(account(user) or {}), "password": password_state(user)}


def password_state(user: User) -> str:
    """What the audit log says of an account's password: set, or password sign-in disabled
    (never the password nor its hash)."""
    return "set" if user.has_usable_password() else "disabled"


def record_password(actor: Actor, user: User) -> AuditEntry | None:
    """A ``password`` entry: ``user``'s password was set (or password sign-in disabled) by
    ``actor``, an admin or the user themselves."""
    return record(actor, "password", user, None, {"password": password_state(user)})


@contextmanager
def accounts_saved() -> Iterator[list[tuple[User, bool]]]:
    """The accounts saved within the block, each with whether it was created: how a command of
    Django's we wrap (``createsuperuser``, ``changepassword``) tells us which account it
    created or changed, to audit it, without our copying the way it finds or prompts for it."""
    saved: list[tuple[User, bool]] = []

    def remember(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
        saved.append((instance, created))

    post_save.connect(remember, sender=User, weak=False)
    try:
        yield saved
    finally:
        post_save.disconnect(remember, sender=User)


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    keys = set(before or {}) | set(after or {})
    return sorted(k for k in keys if (before or {}).get(k) != (after or {}).get(k))


def changes_since(
    row: models.Model,
    since: datetime,
    edited_with: Iterable[tuple[type[models.Model], str]] = (),
) -> list[tuple[AuditEntry, str]]:
    """The entries of the changes made to ``row`` after ``since``, and to the rows edited with
    it (``edited_with``: each model and its field naming ``row``, as a model's dated prices
    are), oldest first, each with what it changed in words ("tokens per day, groups"; "limits:
    suspended"; "added model price"). Passwords set are left out: no page changes them."""
    target = Q(target_type=row._meta.model_name, target_id=str(row.pk))
    for model, field in edited_with:
        naming = Q(**{f"before__{field}": row.pk}) | Q(**{f"after__{field}": row.pk})
        target |= Q(target_type=model._meta.model_name) & naming
    entries = (
        AuditEntry.objects.filter(target, at__gt=since)
        .exclude(action="password")
        .order_by("at", "pk")
    )
    main = row._meta.model_name
    return [(entry, _what_changed(entry, entry.target_type != main)) for entry in entries]


def _what_changed(entry: AuditEntry, edited_with: bool) -> str:
    fields = ", ".join(name.replace("_", " ") for name in changed_fields(entry.before, entry.after))
    if not edited_with:
        return fields
    model = _target_model(entry.target_type)
    name = str(model._meta.verbose_name) if model is not None else entry.target_type
    if entry.before is None:
        return f"added {name}"
    if entry.after is None:
        return f"deleted {name}"
    return f"{name}: {fields}"


def _target_model(target_type: str) -> type[models.Model] | None:
    """The model an entry's ``target_type`` names (ours, or auth's Group), if any."""
    for app in ("conversations", "auth"):
        try:
            return apps.get_model(app, target_type)
        except LookupError:
            continue
    return None


def _readable(value: Any, names: dict[Any, str] | None) -> str:
    if names is not None and value is not None:  # a related row's id, or a list of them
        ids = value if isinstance(value, list) else [value]
        return ", ".join(names.get(pk, f"#{pk} (deleted since)") for pk in ids) or "none"
    if value is None:
        return "blank"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


def readable_changes(entry: AuditEntry) -> list[tuple[str, str, str]]:
    """Each field an entry changed, with its before and after as the admin reads them: a
    related row (a policy's groups and models, a key's user, ...) by its name, not its id."""
    before, after = entry.before or {}, entry.after or {}
    fields = changed_fields(entry.before, entry.after)
    model = _target_model(entry.target_type)
    related: dict[str, dict[Any, str]] = {}
    for name in fields:
        field = None
        if model is not None:
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:  # kept by the log, not a column (an account's policies)
                field = None
        if field is None or not field.is_relation or field.related_model is None:
            continue
        ids: set[Any] = set()
        for side in (before.get(name), after.get(name)):
            if side is not None:
                ids.update(side if isinstance(side, list) else [side])
        rows = field.related_model._default_manager.in_bulk(list(ids))  # type: ignore[union-attr]
        related[name] = {pk: str(row) for pk, row in rows.items()}
    return [
        (
            name,
            "" if entry.before is None else _readable(before.get(name), related.get(name)),
            "" if entry.after is None else _readable(after.get(name), related.get(name)),
        )
        for name in fields
    ]
