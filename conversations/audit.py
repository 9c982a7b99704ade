"""The audit log: who changed a policy, a user's limits, a model, a key or a share, and how."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.forms.models import model_to_dict

from conversations.models import LIMIT_FIELDS, AuditEntry, User, UserLimits

INHERITED = "inherited"


def snapshot(instance: models.Model | None) -> dict[str, Any] | None:
    """The instance's fields as JSON-safe data (many-to-many as sorted ids); a user's own
    limits each as "inherited", "unlimited" or the number."""
    if instance is None or instance.pk is None:
        return None
    data = model_to_dict(instance)
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


def actor_fields(actor: User | AnonymousUser | None) -> dict[str, Any]:
    """The entry's ``actor`` and ``actor_name`` (the name outlives the account)."""
    user = actor if isinstance(actor, User) else None
    return {"actor": user, "actor_name": user.get_username() if user else ""}


def record(
    actor: User | AnonymousUser | None,
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
        target_repr=str(instance)[:200],
        before=before,
        after=after,
    )


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    keys = set(before or {}) | set(after or {})
    return sorted(k for k in keys if (before or {}).get(k) != (after or {}).get(k))
