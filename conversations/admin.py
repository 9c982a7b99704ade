"""The admin: the registry, limits, keys, teams, the ledger (read-only) and the audit log.

Every change to a policy, a group, a user's limits (suspension included), a model and its
dated prices, a key or a share is written to the audit log with its before and after, and so
is every row a deletion changes with it (a deleted policy's users, a deleted group's policies
and members, a deleted account's keys, share links and team memberships), every account created here and every
password set here (that it was set, never what to).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminIntegerFieldWidget, AdminSplitDateTime
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    ReadOnlyPasswordHashWidget,
    UserChangeForm,
)
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from conversations import (
    access,
    api_keys,
    audit,
    generation,
    quota,
    rights,
    sharing,
    signin,
    text,
)
from conversations.csv_export import stream_csv
from conversations.errors import InvalidParameter
from conversations.models import (
    LIMIT_FIELDS,
    OUTPUT_CAP_AT_LEAST_ONE,
    OUTPUT_CAP_REFUSED,
    UNLIMITED,
    ApiKey,
    AuditEntry,
    Conversation,
    Message,
    ModelConfig,
    ModelPrice,
    Policy,
    ShareLink,
    SharingSettings,
    Team,
    UsageRecord,
    User,
    UserLimits,
)
from conversations.params import (
    MODEL_FIELDS_CHECKED,
    check_conversation_params,
    count_refused_conversations,
)
from conversations.ui_actions import MAX_SYSTEM_PROMPT_CHARS, settings_of, settings_version


class StorableDateTimeField(forms.SplitDateTimeField):
    """A date and time in the deployment's time zone whose moment is within years 1 to 9999
    in UTC too: the database stores it in UTC, and Python reads it back from there. Past the
    calendar's ends (the last evening of 9999 west of UTC, the first morning of year 1 east of
    it) the save failed as an internal error, or, a year-0 date, was stored and failed every
    later read of its row (an account's date joined: the account's every request)."""

    def clean(self, value: Any) -> Any:
        moment = super().clean(value)
        if moment is not None:
            try:
                moment.astimezone(UTC)
            except OverflowError:
                raise ValidationError(
                    "This moment is outside the years 1 to 9999 in UTC, where it is stored: "
                    "enter a later (or earlier) one.",
                    code="out_of_range",
                ) from None
        return moment


class StorableDatesAdmin(admin.ModelAdmin):
    """Each date and time edited on the admin's pages is one the database can store."""

    formfield_overrides = {
        models.DateTimeField: {
            "form_class": StorableDateTimeField,
            "widget": AdminSplitDateTime,
        }
    }


class StillStoredForm(forms.ModelForm):  # type: ignore[type-arg]
    """A change form whose row may have been deleted by another admin since the page was
    opened: saved, Django's update found no row and inserted it again, so a deleted policy
    (model, team, ...) came back without a word, and its deletion with it undone in part only
    (its links to users, groups and prices stayed gone). Such a save is refused, naming why.

    Or changed by another admin since (a row whose saves are counted, ``version``: a policy, a
    model with its dated prices, an account with its limits): saved, the page wrote back every
    field as it had read it, undoing the other's change without a word (both told "changed
    successfully"). The page carries the count it was opened at (:data:`VERSION`, with the
    moment, :data:`OPENED_AT`, to name from the audit log who changed what since), and a save
    from an older count is refused, saying so; the page comes back with what was entered.
    A post without the count (a script's) is saved as before.

    The row is locked from this check to the save (the admin validates and saves in one
    transaction), and the save counts itself (:func:`count_the_save`) before it commits: a
    delete or another save that comes after the check waits for this one, and is then
    checked against it."""

    # No Meta: the admin builds the form for its model.

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        row = self.instance
        self.versioned = counts_saves(type(row)) and row.pk is not None and not row._state.adding
        if self.versioned:
            # Rendered by templates/admin/change_form.html (no fieldset lists them).
            self.fields[VERSION] = PageStampField(initial=row.version)
            self.fields[OPENED_AT] = PageStampField(initial=timezone.now().isoformat())

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        row = self.instance
        if row.pk is not None and not row._state.adding:
            rows = type(row)._default_manager.select_for_update().filter(pk=row.pk)
            if self.versioned:
                version = rows.values_list(VERSION, flat=True).first()
                gone = version is None
            else:
                gone = not rows.exists()
            if gone:
                name = row._meta.verbose_name
                raise ValidationError(
                    f"This {name} was deleted by someone else after this page was opened: "
                    f"saving it would create it again. To have it back, add a new {name} "
                    f"(what you entered is below).",
                    code="deleted",
                )
            if self.versioned:
                opened = _read_stamp(cleaned.get(VERSION), cleaned.get(OPENED_AT))
                if opened is not None and opened[0] != version:
                    raise ValidationError(
                        describe_changed_meanwhile(row, opened[1]), code="changed_meanwhile"
                    )
                # As locked: the save writes back the count it was checked against.
                row.version = version
        return cleaned


class PageStampField(forms.CharField):
    """What a page says of itself (when it was opened, at which count of saves), hidden: never
    a change of the row (Django's history would say "Changed version", and a save that changed
    nothing would count)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(widget=forms.HiddenInput, required=False, **kwargs)

    def has_changed(self, initial: Any, data: Any) -> bool:
        return False


#: The hidden fields of a change form whose row counts its saves: the count the page was
#: opened at, and when (:class:`StillStoredForm`).
VERSION, OPENED_AT = "version", "opened_at"


def counts_saves(model: type[models.Model]) -> bool:
    """Whether the admin counts the saves of ``model``'s rows (``models.saves_counter``)."""
    return any(field.name == VERSION for field in model._meta.concrete_fields)


def _read_stamp(version: Any, opened_at: Any) -> tuple[int, datetime | None] | None:
    """The count a page was opened at, and when; None when it carries none to read."""
    try:
        count = int(version)
    except (TypeError, ValueError):
        return None
    try:
        at: datetime | None = datetime.fromisoformat(opened_at)
    except (TypeError, ValueError):
        at = None
    if at is not None and timezone.is_naive(at):
        at = None
    return count, at


def count_the_save(form: Any, formsets: Any) -> None:
    """A change form's save that changed its row, or the rows of its inlines, counts as one
    (``version``): every page opened before it is refused (:class:`StillStoredForm`). A save
    that changed nothing refuses no one."""
    row = form.instance
    if not getattr(form, "versioned", False) or row.pk is None:
        return
    if form.has_changed() or any(formset.has_changed() for formset in formsets):
        type(row)._default_manager.filter(pk=row.pk).update(version=models.F(VERSION) + 1)


def _edited_with(model: type[models.Model]) -> list[tuple[type[models.Model], str]]:
    """The rows edited on the admin page of ``model``'s rows (its inlines'), each model with
    its field naming the row (a model's dated prices: ``ModelPrice.model``)."""
    try:
        inlines = admin.site.get_model_admin(model).inlines
    except NotRegistered:
        return []
    return [
        (inline.model, field.name)
        for inline in inlines
        for field in inline.model._meta.concrete_fields
        if field.is_relation and field.related_model is model
    ]


#: Changes named by the refusal of a save from an older page; it counts the others.
CHANGES_NAMED = 5


def describe_changed_meanwhile(row: models.Model, since: datetime | None) -> str:
    """Why a save from a page opened before another admin's save is refused, and what to do:
    who changed what and when since the page was opened, as the audit log says (the row's
    entries and its inlines' rows'), and a link to the page as it is now (HTML)."""
    name = row._meta.verbose_name
    entries = audit.changes_since(row, since, _edited_with(type(row))) if since else []
    said = [
        format_html(
            "{} at {}{}",
            entry.actor_name or "someone",
            f"{timezone.localtime(entry.at):%Y-%m-%d %H:%M:%S}",
            format_html(" ({})", what) if what else "",
        )
        for entry, what in entries[:CHANGES_NAMED]
    ]
    if len(entries) > CHANGES_NAMED:
        more = len(entries) - CHANGES_NAMED
        said.append(format_html("{} more change{}", more, "" if more == 1 else "s"))
    by = format_html(": {}", format_html_join("; ", "{}", ((one,) for one in said))) if said else ""
    opts = row._meta
    page = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
    return format_html(
        "This {} was changed after this page was opened{}. Nothing was saved, so that "
        "those changes are not undone. What you entered is still below: "
        '<a href="{}" target="_blank" rel="noopener">open this {} as it is now</a> (a new '
        "tab) to see them, and make yours there.",
        name,
        by,
        page,
        name,
    )


class AuditedAdmin(StorableDatesAdmin):
    """Records before/after of every save and delete, many-to-many fields included, and of
    each row a delete changes besides (:meth:`changed_by_deletion`). A change form whose row
    was deleted meanwhile is refused (:class:`StillStoredForm`), not saved as a new row."""

    form = StillStoredForm

    def changed_by_deletion(self, obj: Any) -> list[models.Model]:
        """The audited rows that deleting ``obj`` changes or deletes with it (its many-to-many
        links, foreign keys set to null, cascades): each gets an entry of its own."""
        return []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        old = type(obj).objects.filter(pk=obj.pk).first() if change else None
        request._audit_before = audit.snapshot(old)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        count_the_save(form, formsets)
        obj = form.instance
        before = getattr(request, "_audit_before", None)
        audit.record(request.user, "change" if change else "create", obj, before, audit.stored(obj))  # type: ignore[arg-type]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Each inline row added, changed or deleted (a model's dated prices) is an entry of
        its own, with the row's before as stored (the form has already changed the instance)."""
        # By instance: deleting a row clears its pk.
        pks = {id(f.instance): f.instance.pk for f in formset.initial_forms}
        stored = formset.model.objects.filter(pk__in=[pk for pk in pks.values() if pk])
        befores = {row.pk: audit.snapshot(row) for row in stored}
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            audit.record(request.user, "create", obj, None, audit.stored(obj))  # type: ignore[arg-type]
        for obj, _ in formset.changed_objects:
            audit.record(request.user, "change", obj, befores.get(obj.pk), audit.stored(obj))  # type: ignore[arg-type]
        for obj in formset.deleted_objects:
            pk = pks.get(id(obj))
            self._record_deletion(request, obj, pk, befores.get(pk))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        pk, before = obj.pk, audit.snapshot(obj)
        others = _before_deletion(self.changed_by_deletion(obj))
        super().delete_model(request, obj)
        self._record_deletion(request, obj, pk, before)
        _record_changed_by_deletion(request, others)

    def _record_deletion(
        self, request: HttpRequest, obj: Any, pk: Any, before: dict[str, Any] | None
    ) -> None:
        # Deleting cleared its pk (and a snapshot leaves out a pk not editable: a UUID).
        obj.pk = pk
        audit.record(request.user, "delete", obj, before, None)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


def _audited(row: models.Model | None) -> dict[str, Any] | None:
    """What the audit log keeps of a row: of an account its flags and grants, else its fields."""
    return audit.account(row) if isinstance(row, User) or row is None else audit.snapshot(row)


def _before_deletion(rows: list[models.Model]) -> list[tuple[models.Model, dict[str, Any] | None]]:
    """Each row a deletion is about to change or delete with it, and what it was."""
    return [(row, _audited(row)) for row in rows]


def _record_changed_by_deletion(
    request: HttpRequest, others: list[tuple[models.Model, dict[str, Any] | None]]
) -> None:
    """An entry for each row of :func:`_before_deletion` once the deletion is done: a
    ``change`` for one still stored, a ``delete`` for one gone with it. A row still stored
    that it changed counts it as a save of the row's page (:func:`count_a_change_of`)."""
    for row, before in others:
        after = _audited(type(row)._default_manager.filter(pk=row.pk).first())
        action = "change" if after is not None else "delete"
        if audit.record(request.user, action, row, before, after) and after is not None:
            count_a_change_of(row)


def count_a_change_of(row: models.Model) -> None:
    """A change made to ``row`` other than by its page's save (a group, a model or a policy
    deleted takes itself out of it), counted as one on the page it is edited on (its own, or
    for a user's limits the account's): a save from a page opened before is refused, naming
    the change, instead of being refused on a choice no longer there, unsaid why ("Select a
    valid choice. 7 is not one of the available choices.")."""
    page_row: tuple[type[models.Model], Any] | None = None
    if counts_saves(type(row)):
        page_row = (type(row), row.pk)
    elif isinstance(row, UserLimits):
        page_row = (User, row.user_id)
    if page_row is not None:
        model, pk = page_row
        model._default_manager.filter(pk=pk).update(version=models.F(VERSION) + 1)


class DeletesConversationsAdmin(admin.ModelAdmin):
    """An admin whose deletes take conversations with them, and so their messages: read-only
    in the admin (no one may delete them one by one), they alone refused the delete of any
    conversation, or account, that held a message ("Cannot delete", 403). The ledger rows stay
    (``UsageRecord.conversation`` and ``.user`` are set to null)."""

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return (
            _abridged(deleted),
            counts,
            perms_needed - {str(Message._meta.verbose_name)},
            protected,
        )


#: Objects of one kind the delete confirmation lists by name under each object; the summary
#: above it still counts them all.
DELETED_OBJECTS_LISTED = 20


def _abridged(deleted: list[Any]) -> list[Any]:
    """Django's nested list of what a delete takes (each object, then a list of what goes
    with it), at most :data:`DELETED_OBJECTS_LISTED` objects to a list and a line saying how
    many more. A conversation's every message was listed: thousands of lines for one delete."""
    kept: list[Any] = []
    objects = 0
    for item in deleted:
        if isinstance(item, list):
            if objects <= DELETED_OBJECTS_LISTED:
                kept.append(_abridged(item))
            continue
        objects += 1
        if objects <= DELETED_OBJECTS_LISTED:
            kept.append(item)
    if objects > DELETED_OBJECTS_LISTED:
        kept.append(f"… and {objects - DELETED_OBJECTS_LISTED:,} more")
    return kept


INHERIT, A_NUMBER = "inherit", "number"
OVERRIDE_CHOICES = [
    (INHERIT, "Inherit from the policy"),
    (A_NUMBER, "Limit to"),
    (UNLIMITED, "Unlimited"),
]
_CHOICE_LABELS = dict(OVERRIDE_CHOICES)


class LimitOverrideWidget(forms.MultiWidget):
    """How a user's own limit is set: a choice (inherit, a number, unlimited) and the number.
    The number keeps the field's own name (``<field>``), the choice is ``<field>_choice``;
    its input is the number field's own (its ``min`` the least the field takes)."""

    def __init__(self, number: forms.Widget, number_label: str) -> None:
        number.attrs["aria-label"] = number_label
        super().__init__(
            {
                "choice": forms.Select(choices=OVERRIDE_CHOICES),
                "": number,
            }
        )

    def decompress(self, value: Any) -> list[Any]:
        if value == UNLIMITED:
            return [UNLIMITED, None]
        return [INHERIT, None] if value is None else [A_NUMBER, value]

    def id_for_label(self, id_: str) -> str:
        return f"{id_}_0" if id_ else ""  # the label names the choice (the first widget)


class LimitOverrideField(forms.MultiValueField):
    """A user's own limit as :meth:`UserLimits.override` reads it: a number, ``UNLIMITED``,
    or None (inherit). A number with "inherit" or "unlimited" chosen is refused, not dropped
    (the admin who typed it meant something); so is "limit to" without a number. A post
    without the choice (a script written before it existed) means what the number says."""

    def __init__(self, number: forms.Field, label: str) -> None:
        super().__init__(
            fields=(forms.ChoiceField(choices=OVERRIDE_CHOICES, required=False), number),
            widget=LimitOverrideWidget(number.widget, f"{label}: the limit"),
            label=label,
            required=False,
            require_all_fields=False,
        )

    def compress(self, data_list: list[Any]) -> int | str | None:
        choice, number = [*data_list, "", None][:2]  # [] when both were left empty
        if not choice:
            choice = INHERIT if number is None else A_NUMBER
        if choice == A_NUMBER:
            if number is None:
                raise ValidationError(
                    "Enter the limit, or choose “Inherit from the policy” or “Unlimited”.",
                    code="required",
                )
            return int(number)
        if number is not None:
            raise ValidationError(
                f"“{_CHOICE_LABELS[choice]}” is chosen, and a number entered: choose “Limit "
                f"to” to limit to {number:,}, or clear the number.",
                code="ambiguous",
            )
        return UNLIMITED if choice == UNLIMITED else None


def output_cap_formfield(
    model: type[Policy | UserLimits], refusal: str, **options: Any
) -> forms.Field:
    """The form field of an output cap (a policy's, a user's own ``max_output_tokens``): at
    least 1, in the browser too (the column's type alone gave ``min="0"``), a lower number
    refused in ``refusal``'s words, which say how that form means "no cap"."""
    column = model._meta.get_field("max_output_tokens")
    assert isinstance(column, models.Field)
    field = column.formfield(
        required=False,
        min_value=OUTPUT_CAP_AT_LEAST_ONE.limit_value,
        error_messages={"min_value": refusal},
        **options,
    )
    assert field is not None
    return field


def _override_field(name: str) -> LimitOverrideField:
    column = UserLimits._meta.get_field(name)
    assert isinstance(column, models.Field)
    number: forms.Field | None
    if name == "max_output_tokens":
        number = output_cap_formfield(
            UserLimits,
            "The output cap is at least 1 token: for no cap choose “Unlimited”, or “Inherit "
            "from the policy” for the policy's.",
        )
    else:
        number = column.formfield(required=False)  # the column's bounds
    assert number is not None
    return LimitOverrideField(number, name.replace("_", " ").capitalize())


def describe_inherited(limit: quota.InheritedLimit) -> str:
    """What "Inherit from the policy" gives a limit and where it comes from, as HTML (the
    admin shows help text unescaped: policy and group names are escaped here)."""
    value = "unlimited" if limit.value is None else f"{limit.value:,}"
    if limit.policy is None:
        return format_html("Inherits: {} (no policy applies)", value)
    if limit.reached_by == "assigned":
        return format_html("Inherits: {} from policy “{}”, the user's own", value, limit.policy)
    if limit.reached_by == "default":
        return format_html("Inherits: {} from the default policy “{}”", value, limit.policy)
    groups = format_html_join(", ", "“{}”", ((group,) for group in limit.groups))
    return format_html(
        "Inherits: {} from policy “{}” via group{} {}",
        value,
        limit.policy,
        "" if len(limit.groups) == 1 else "s",
        groups,
    )


class UserLimitsForm(forms.ModelForm):  # type: ignore[type-arg]
    """A user's own limits, each inherited, a number or unlimited (stored as the number and
    ``<field>_unlimited``, set here together)."""

    tokens_per_day = _override_field("tokens_per_day")
    tokens_per_month = _override_field("tokens_per_month")
    max_output_tokens = _override_field("max_output_tokens")
    requests_per_minute = _override_field("requests_per_minute")
    concurrent_streams = _override_field("concurrent_streams")

    class Meta:
        model = UserLimits
        fields = ["suspended", "policy", *LIMIT_FIELDS]

    def __init__(
        self,
        *args: Any,
        inherited: Mapping[str, quota.InheritedLimit] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for name in LIMIT_FIELDS:
            self.initial[name] = self.instance.override(name)
            if inherited is not None:
                # Under the field: what "inherit" gives, whichever choice is made, read
                # with the choice by a screen reader (the admin's help text sits outside it).
                field = self.fields[name]
                field.help_text = describe_inherited(inherited[name])
                choice = field.widget.widgets[0]  # type: ignore[attr-defined]
                choice.attrs["aria-describedby"] = f"{self[name].id_for_label}_helptext"

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        for name in LIMIT_FIELDS:
            if name in cleaned:  # absent: refused, and the form with it
                self.instance.set_override(name, cleaned[name])
                cleaned[name] = getattr(self.instance, name)  # what the model form saves
        if (
            self.instance._state.adding
            and UserLimits.objects.filter(user_id=self.instance.user_id).exists()
        ):
            # Else refused only on the inline's hidden link to the account (one row a user):
            # "Please correct the error below." and no error below, every save again.
            raise ValidationError(
                "This user's own limits were set by someone else after this page was opened: "
                "reload the page to see them, and change them there. What you entered here is "
                "not saved.",
                code="added_meanwhile",
            )
        return cleaned


def limits_below_a_reply(limits: quota.Limits, under: str) -> list[str]:
    """What to say of ``limits`` when saved (``under``: "under this policy", "with these
    limits"). Saved all the same (an API call may ask for fewer output tokens), but said: a day
    or month limit below what one chat reply reserves refuses every reply in the chat, its
    users reading "700 left today" beside each refusal."""
    said = []
    day, month = limits.tokens_per_day, limits.tokens_per_month
    if day is not None and month is not None and month < day and not limits.suspended:
        # Saved all the same (a month with a lower cap may be meant), but said: the day's
        # number reads as what a user may spend in a day, and never can be.
        said.append(
            f"Tokens per month ({month:,}) is below tokens per day ({day:,}): {under}, a day "
            f"can never use more than the month's {month:,}. Raise the month's limit, or "
            "lower the day's to what you mean."
        )
    reply = quota.smallest_reply_output(limits)
    if reply is None or limits.suspended:
        return said
    return said + [
        f"{name} ({limit:,}) is below what one chat reply reserves: its prompt "
        f"and up to {reply:,} output tokens (“Max output tokens”, or the models' "
        f"default output). No reply can be sent in the chat {under}; only "
        "API calls that ask for fewer output tokens. Raise the limit or lower "
        "“Max output tokens”."
        for name, limit in (
            ("Tokens per day", limits.tokens_per_day),
            ("Tokens per month", limits.tokens_per_month),
        )
        if limit is not None and limit < reply
    ]


class UserLimitsInline(admin.StackedInline):
    model = UserLimits
    form = UserLimitsForm
    can_delete = False
    verbose_name_plural = "Limits"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "suspended",
                    "policy",
                    ("tokens_per_day", "tokens_per_month"),
                    ("max_output_tokens", "requests_per_minute", "concurrent_streams"),
                ],
                # Unlike a policy's, a blank field here is not unlimited: each limit says.
                "description": "Each limit: “Inherit from the policy” takes the policy's value "
                "(the user's own policy, else the most generous of their groups' policies, "
                "else the default policy); “Limit to” a number sets this user's own; "
                "“Unlimited” lifts it for this user, whatever the policy says. Under each "
                "limit: what inheriting gives it now, and from which policy (as saved: a "
                "change of policy or groups on this page shows once saved).",
            },
        )
    ]
    extra = 0
    max_num = 1

    class Media:
        js = ["js/admin_limits.js"]  # a number typed chooses "Limit to", and back

    # Read-only (staff who may only view the account, or only its limits), Django showed each
    # limit's stored number: "-" for a limit left to the policy and for an unlimited one
    # alike, and nothing of what inheriting gives. Each is said as the choice on the editable
    # page reads: its own number, "Unlimited", or what it inherits and from which policy.
    # Django posts nothing of a read-only inline, and saves nothing of one (it keeps each
    # form's stored values), so no crafted post changes them either.
    READ_ONLY_LIMITS = {name: f"{name}_as_set" for name in LIMIT_FIELDS}

    def is_read_only(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:
            return not self.has_change_permission(request, obj)
        account = self.admin_site.get_model_admin(self.parent_model)
        return not (
            account.has_change_permission(request, obj) and self.has_change_permission(request, obj)
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if not self.is_read_only(request, obj):
            return fieldsets

        def shown(name: Any) -> Any:
            if isinstance(name, tuple):
                return tuple(shown(n) for n in name)
            return self.READ_ONLY_LIMITS.get(name, name)

        return [
            (
                title,
                {
                    **options,
                    "fields": [shown(name) for name in options["fields"]],
                    "description": "Each limit is this user's own (a number, or unlimited "
                    "whatever the policy says), or inherited from the policy (the user's own "
                    "policy, else the most generous of their groups' policies, else the default "
                    "policy), which it names.",
                },
            )
            for title, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = [*super().get_readonly_fields(request, obj)]
        if self.is_read_only(request, obj):
            fields += ["suspended", "policy", *self.READ_ONLY_LIMITS.values()]
        return fields

    def limit_as_set(self, limits: UserLimits, name: str) -> str:
        override = limits.override(name)
        if override == UNLIMITED:
            return "Unlimited (this user's own)"
        if override is not None:
            return f"{override:,} (this user's own)"
        # Read once for the five limits of the form.
        inherited = getattr(limits, "_inherited_limits", None)
        if inherited is None:
            inherited = limits._inherited_limits = quota.inherited_limits(limits.user)  # type: ignore[attr-defined]
        return describe_inherited(inherited[name])

    @admin.display(description="Tokens per day")
    def tokens_per_day_as_set(self, limits: UserLimits) -> str:
        return self.limit_as_set(limits, "tokens_per_day")

    @admin.display(description="Tokens per month")
    def tokens_per_month_as_set(self, limits: UserLimits) -> str:
        return self.limit_as_set(limits, "tokens_per_month")

    @admin.display(description="Max output tokens")
    def max_output_tokens_as_set(self, limits: UserLimits) -> str:
        return self.limit_as_set(limits, "max_output_tokens")

    @admin.display(description="Requests per minute")
    def requests_per_minute_as_set(self, limits: UserLimits) -> str:
        return self.limit_as_set(limits, "requests_per_minute")

    @admin.display(description="Concurrent streams")
    def concurrent_streams_as_set(self, limits: UserLimits) -> str:
        return self.limit_as_set(limits, "concurrent_streams")


class SuspendedFilter(admin.SimpleListFilter):
    """Suspended or not; a user without limits of their own is not (nor is one whose row says
    not), which a plain filter on ``limits__suspended`` would leave out of both."""

    title = "suspended"
    parameter_name = "suspended"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.filter(limits__suspended=True)
        if self.value() == "no":
            return queryset.exclude(limits__suspended=True)
        return queryset


class AccountChangeForm(StillStoredForm, UserChangeForm):  # type: ignore[type-arg]
    """Django's account form, refused once the account is deleted: saved, it brought the
    account back, password and all. Staff who do not grant rights (:mod:`rights`) cannot put
    the account in, or take it out of, a group that carries permissions."""

    #: Set by :meth:`UserAdmin.get_form` for the account editing (:func:`rights.grants_rights`).
    grants_rights = False

    def clean_groups(self) -> Any:
        groups = self.cleaned_data["groups"]
        if not self.grants_rights:
            before = set(self.instance.groups.all()) if self.instance.pk else set()
            changed = rights.groups_with_permissions(before ^ set(groups))
            if changed:
                names = ", ".join(f"“{group.name}”" for group in changed)
                raise ValidationError(
                    f"Only a superuser can add an account to, or take it out of, a group that "
                    f"carries permissions: {names}. Groups that carry only policies are yours "
                    "to change.",
                    code="rights",
                )
        return groups


class PasswordSummaryWidget(ReadOnlyPasswordHashWidget):
    """Django's summary of a password (its algorithm, salt and hash, masked) without its
    "Reset password" button: for staff who may not set the account's password
    (:func:`rights.may_change_sign_in`), whom the button led to a 403. On their own account
    the button leads to the admin's "Change password", which asks for the current one."""

    #: Where the account's own password is changed instead (the page that asks for the current
    #: one), shown as a button; None: no button.
    password_change_url: str | None = None

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> Any:
        summary = self.get_context(name, value, attrs)["summary"]
        said = format_html_join(
            " ",
            "<strong>{}</strong>{}",
            (
                (entry["label"], format_html(": <bdi>{}</bdi>", entry["value"]))
                if entry.get("value")
                else (entry["label"], "")
                for entry in summary
            ),
        )
        if self.password_change_url is None:
            return format_html("<div><p>{}</p></div>", said)
        return format_html(
            '<div><p>{}</p><p><a class="button" href="{}">Change your password</a></p></div>',
            said,
            self.password_change_url,
        )


class SetAccountPasswordForm(signin.WritesOnlyThePassword, AdminPasswordChangeForm):
    """The admin's "Set password" of an account: only the password is written."""


@admin.register(User)
class UserAdmin(DeletesConversationsAdmin, StorableDatesAdmin, BaseUserAdmin):
    form = AccountChangeForm
    change_password_form = SetAccountPasswordForm
    inlines = [UserLimitsInline]
    list_display = [
        "username",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "suspended",
    ]
    list_filter = [*BaseUserAdmin.list_filter, SuspendedFilter]
    # The "suspended" column reads each user's limits: with the page's query, not one each.
    list_select_related = ["limits"]

    def get_formset_kwargs(
        self, request: HttpRequest, obj: Any, inline: Any, prefix: str
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, UserLimitsInline) and obj is not None and obj.pk is not None:
            # Each limit says what "inherit" gives, resolved as admission resolves it. The
            # form added by "Add another" (no row yet) says it too.
            kwargs["form_kwargs"] = {"inherited": quota.inherited_limits(obj)}
        return kwargs

    #: The link that adds the Limits form to an account without limits of its own.
    ADD_LIMITS = "Set this user's own limits, or suspend them"

    def get_inline_formsets(
        self, request: HttpRequest, formsets: Any, inline_instances: Any, obj: Any = None
    ) -> Any:
        """The Limits section of an account with no limits of its own offered only "Add another
        Limits" (Django's words for any inline): nothing said there of suspending the user,
        nor that there was not a first one. Its link says what it is for."""
        inline_formsets = super().get_inline_formsets(request, formsets, inline_instances, obj)
        for inline_formset in inline_formsets:
            if isinstance(inline_formset.opts, UserLimitsInline):
                data = json.loads(inline_formset.inline_formset_data())
                data["options"]["addText"] = self.ADD_LIMITS
                # Read by the template as an attribute (a callable is called there).
                inline_formset.inline_formset_data = functools.partial(json.dumps, data)
        return inline_formsets

    # Rights flow down from superusers only (conversations/rights.py): staff who are not
    # cannot set superuser status or permissions (shown read-only), change a group that
    # carries permissions (the form refuses it), nor change, set the password of or delete
    # an account that holds a right they lack (a superuser's above all: its page is read-only).
    # Nor set the password of any staff account, their own included (the admin's "Change
    # password" asks for the current one), nor change how another staff account signs in
    # (``rights.SIGN_IN_FIELDS``, read-only).

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The last sign-in is the account's to record: editable, a sign-in between the page's
        # opening and its save made an unchanged save a change (written back as it was read,
        # and another admin's later save refused for it).
        fields = [*super().get_readonly_fields(request, obj), "last_login"]
        if not rights.grants_rights(request.user):  # type: ignore[arg-type]
            fields += ["is_superuser", "user_permissions"]
        if (
            obj is not None
            and obj.pk != request.user.pk
            and not rights.may_change_sign_in(request.user, obj)  # type: ignore[arg-type]
        ):
            fields += [name for name in rights.SIGN_IN_FIELDS if name not in fields]
        return fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.grants_rights = rights.grants_rights(request.user)  # type: ignore[attr-defined,arg-type]
        if (
            obj is not None
            and "password" in form.base_fields
            and not (
                self.has_change_permission(request, obj)
                and rights.may_change_sign_in(request.user, obj)  # type: ignore[arg-type]
            )
        ):
            # Not theirs to set: the password's summary, without "Reset password" (a 403);
            # on their own account, a button to the page that asks for the current one.
            # A field and widget of this form class's own: the declared ones are every form's.
            password = copy.deepcopy(form.base_fields["password"])
            password.widget = PasswordSummaryWidget()
            if obj.pk == request.user.pk:
                password.widget.password_change_url = reverse(
                    "admin:password_change", current_app=self.admin_site.name
                )
            form.base_fields["password"] = password
        return form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not rights.may_change_account(request.user, obj):  # type: ignore[arg-type]
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting an account deletes its conversations: another staff account's is a
        # superuser's to delete, as its sign-in is (a peer's private conversations are not a
        # clerk's to destroy, any more than to read).
        if obj is not None and not rights.may_change_sign_in(request.user, obj):  # type: ignore[arg-type]
            return False
        return super().has_delete_permission(request, obj)

    # Sorted as shown: no limits of their own is not suspended (not NULL, first or last).
    @admin.display(boolean=True, ordering=Coalesce("limits__suspended", False))
    def suspended(self, user: User) -> bool:
        limits = getattr(user, "limits", None)
        return bool(limits and limits.suspended)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        old = User.objects.filter(pk=obj.pk).first() if change else None
        request._account_before = audit.account(old)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        count_the_save(form, formsets)  # its limits with it
        user = form.instance
        before, after = getattr(request, "_account_before", None), audit.account(user)
        if not change:
            created = audit.account_created(user)
            audit.record(request.user, "create", user, None, created)  # type: ignore[arg-type]
        elif audit.record(request.user, "change", user, before, after):  # type: ignore[arg-type]
            # Deactivated (or otherwise changed): the account's open sockets re-check.
            sharing.announce_account_change(user.pk, access.reachable_conversation_ids(user))
            if "groups" in form.changed_data:
                # Other groups, other policies: its open pages say what it may send now.
                sharing.announce_limits_change_of([user.pk])
        if UserLimits.objects.filter(user=user).exists():
            # The user's own limits, as they resolve with whatever they leave to a policy.
            for warning in limits_below_a_reply(quota.limits_for(user), "with these limits"):
                self.message_user(request, warning, messages.WARNING)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        """Django's page; a password it sets (or password sign-in it disables) is audited, as
        "password" set or disabled by whom, and the account's sessions elsewhere leave. Read
        from the stored hash, which each setting changes (a new salt, even for the same
        words): a refused form, or Django's redirect back for conflicting choices, set none.
        Refused (403) to staff who may not set it (:func:`rights.may_change_sign_in`)."""
        user = self.get_object(request, unquote(id))
        if user is not None and not rights.may_change_sign_in(request.user, user):  # type: ignore[arg-type]
            raise PermissionDenied
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and user is not None:
            stored = User.objects.filter(pk=user.pk).first()
            if stored is not None and stored.password != user.password:
                audit.record_password(request.user, stored)  # type: ignore[arg-type]
                sharing.announce_password_change(stored)
        return response

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        """The account, its limits, its API keys and the share links of its conversations (all
        deleted with it) each get an entry; the sockets open on what the account could see
        (its own conversations are deleted with it) leave."""
        pk, before = obj.pk, audit.account(obj)
        reachable = access.reachable_conversation_ids(obj)
        limits = UserLimits.objects.filter(user=obj).select_related("user").first()
        limits_before = audit.snapshot(limits)
        others = _before_deletion(self.changed_by_deletion(obj))
        super().delete_model(request, obj)
        sharing.announce_account_change(pk, reachable)
        obj.pk = pk  # deleting cleared it
        audit.record(request.user, "delete", obj, before, None)  # type: ignore[arg-type]
        if limits is not None and limits_before is not None:
            limits.pk = limits_before["id"]
            audit.record(request.user, "delete", limits, limits_before, None)  # type: ignore[arg-type]
        _record_changed_by_deletion(request, others)

    def changed_by_deletion(self, user: User) -> list[models.Model]:
        """The audited rows that go with an account: its keys (each audited as a key deleted
        on its own page is), the share links of its conversations (as when a conversation is
        deleted here) or that it made (on one given to another owner since), and the teams it
        leaves (each a change of the team's members, as on the team's page)."""
        return [
            *ApiKey.objects.filter(user=user).order_by("pk"),
            *Team.objects.filter(members=user).order_by("pk"),
            *ShareLink.objects.filter(Q(conversation__owner=user) | Q(created_by=user))
            .select_related("conversation")  # named in its entry, once deleted
            .order_by("pk"),
        ]

    # "Delete selected" deletes each account as its page does: audited alike.
    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not UserLimits:
            super().save_formset(request, form, formset, change)
            return
        befores = {
            f.instance.pk: audit.snapshot(UserLimits.objects.filter(pk=f.instance.pk).first())
            for f in formset.forms
            if f.instance.pk
        }
        suspended = UserLimits.objects.filter(user=form.instance, suspended=True)
        was_suspended = change and suspended.exists()
        super().save_formset(request, form, formset, change)
        if change and (formset.has_changed() or suspended.exists() != was_suspended):
            # Suspended, unsuspended, its limits deleted, or a limit raised or lowered: the
            # account's open pages say what it may send now, without a reload.
            sharing.announce_limits_change(form.instance.pk, suspended=suspended.exists())
        for inline_form in formset.forms:
            obj = inline_form.instance
            if obj.pk is None:
                continue
            before, after = befores.get(obj.pk), audit.snapshot(obj)
            was = bool(before and before.get("suspended"))
            # The user's first limits are created; a suspension (first or not) is found by
            # its own action.
            action = "change" if obj.pk in befores else "create"
            if after and after.get("suspended") != was:
                action = "suspend" if after.get("suspended") else "unsuspend"
            audit.record(request.user, action, obj, before, after)  # type: ignore[arg-type]


def _policy_names(policies: list[Policy]) -> str:
    names = ", ".join(f"“{p.name}”" + (" (the default)" if p.is_default else "") for p in policies)
    return f"polic{'y' if len(policies) == 1 else 'ies'} {names}"


def describe_left_without_a_model(policies: list[Policy], by: str) -> str:
    """What ``by`` (disabling or deleting models) does to ``policies``, left with no enabled
    model (:func:`quota.policies_left_without_a_model`), and the way to avoid it."""
    one = len(policies) == 1
    return (
        f"{by} leaves {_policy_names(policies)} with no enabled model: {'its' if one else 'their'} "
        "users (but those whose other groups' policies allow one) can no longer chat or call "
        "the API, and are told why. To avoid it, allow "
        f"{'it' if one else 'them'} another model (or “All models”) first."
    )


class ModelConfigForm(StillStoredForm):
    """Unticking "Enabled" on the last enabled model a policy allows left that policy with no
    model, unsaid (a policy saved with none is refused): it is refused, naming the policies,
    unless "Disable it all the same" is ticked (shown when it applies,
    :meth:`ModelConfigAdmin.get_fieldsets`)."""

    # No Meta: the admin builds the form for ModelConfig with its fieldsets' fields.

    disable_all_the_same = forms.BooleanField(
        required=False,
        label="Disable it all the same",
        help_text="Ticked, disabling this model leaves the policies that allow no other enabled "
        "model with none.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        model = self.instance
        if (
            cleaned.get("enabled") is False
            and model.pk is not None
            and ModelConfig.objects.filter(pk=model.pk, enabled=True).exists()
            and not cleaned.get("disable_all_the_same")
        ):
            left = quota.policies_left_without_a_model([model])
            if left:
                self.add_error(
                    "enabled",
                    describe_left_without_a_model(left, "Disabling this model")
                    + " Or tick “Disable it all the same”.",
                )
        return cleaned


class ModelPriceInline(admin.TabularInline):
    model = ModelPrice
    extra = 0
    fields = ["effective_from", "input_cache_hit", "input_cache_miss", "output"]


@admin.register(ModelConfig)
class ModelConfigAdmin(AuditedAdmin):
    list_display = [
        "name",
        "display_name",
        "upstream_model",
        "thinking",
        "enabled",
        "context_window",
        "max_output_tokens",
        "price_input_cache_hit",
        "price_input_cache_miss",
        "price_output",
    ]
    form = ModelConfigForm
    inlines = [ModelPriceInline]
    fieldsets = [  # type: ignore[assignment]
        (None, {"fields": ["name", "display_name", "enabled", "sort_order"]}),
        ("Upstream", {"fields": ["upstream_model", "thinking", "reasoning_passback"]}),
        ("Capabilities", {"fields": ["supports_tools", "supports_json", "supports_logprobs"]}),
        ("Limits", {"fields": ["context_window", "max_output_tokens", "default_max_tokens"]}),
        (
            "Prices (USD per 1M tokens; dated prices below take precedence from their date)",
            {"fields": ["price_input_cache_hit", "price_input_cache_miss", "price_output"]},
        ),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """With "Disable it all the same" under "Enabled" when disabling this model would leave
        a policy with no enabled model (the form refuses it unless ticked)."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not obj.enabled or not quota.policies_left_without_a_model([obj]):
            return fieldsets
        (name, options), *rest = fieldsets
        fields = list(options["fields"])
        fields.insert(fields.index("enabled") + 1, "disable_all_the_same")
        return [(name, {**options, "fields": fields}), *rest]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change and set(form.changed_data) & set(MODEL_FIELDS_CHECKED):
            self._warn_of_refused_params(request, form.instance)

    def _warn_of_refused_params(self, request: HttpRequest, model: ModelConfig) -> None:
        """The change stands (the upstream decides what a model can do), but the admin is told
        which conversations it leaves with parameters the model now refuses, and what follows."""
        refused = count_refused_conversations(model)
        if not refused:
            return
        total = sum(refused.values())
        by_param = ", ".join(f"{name}: {count}" for name, count in sorted(refused.items()))
        listing = reverse("admin:conversations_conversation_changelist")
        self.message_user(
            request,
            format_html(
                "{} conversation{} of {} {} parameters it now refuses ({}). Their next "
                "message is refused with an error naming the parameter until the owner "
                "changes it in the conversation's settings; you can also edit them here "
                '(<a href="{}?model__id__exact={}">the model\'s conversations</a>), or undo '
                "this change.",
                total,
                "" if total == 1 else "s",
                model.name,
                "keeps" if total == 1 else "keep",
                by_param,
                listing,
                model.pk,
            ),
            messages.WARNING,
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """A model that conversations, messages or the ledger name is protected: the page says
        what uses each, counted, and what to do instead, and nothing is deleted. Django's own
        page read every one of those rows, the whole ledger of the model (slow to the point of
        timing out on a busy deployment), and then only said that the account "doesn't have
        permission to delete" usage records (no account has: the ledger is read-only), never
        what protects the model nor that disabling it is the way to retire it."""
        in_use = describe_uses(objs)
        if in_use:
            return [], {}, set(), in_use
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Said before "Yes, I'm sure": the policies the delete leaves with no enabled model.
        left = quota.policies_left_without_a_model(objs)
        if left:
            by = "Deleting this model" if len(objs) == 1 else "Deleting these models"
            deleted = [*deleted, describe_left_without_a_model(left, by)]
        return deleted, counts, perms_needed, protected

    def changed_by_deletion(self, model: ModelConfig) -> list[models.Model]:
        # Only a model never used can be deleted (conversations and the ledger protect it).
        return [
            *Policy.objects.filter(allowed_models=model).order_by("pk"),
            *ModelPrice.objects.filter(model=model).select_related("model"),
        ]


def describe_uses(models_: Any) -> list[str]:
    """For each of ``models_`` that is in use, a line saying by how many conversations,
    messages and ledger rows (which keep it from being deleted), counted in the database."""
    ids = [model.pk for model in models_]
    uses: dict[int, list[str]] = {}
    for one, many, rows in (
        ("conversation", "conversations", Conversation.objects.filter(model_id__in=ids)),
        ("message", "messages", Message.objects.filter(model_id__in=ids)),
        (
            "call in the usage ledger",
            "calls in the usage ledger",
            UsageRecord.objects.filter(model_id__in=ids),
        ),
    ):
        for row in rows.values("model_id").annotate(n=models.Count("pk")).order_by():
            n = row["n"]
            uses.setdefault(row["model_id"], []).append(f"{n:,} {one if n == 1 else many}")
    return [
        f"{model.name}: used by {', '.join(uses[model.pk])}. They are kept for good, so the "
        "model cannot be deleted: untick “Enabled” to retire it (no one can choose it any "
        "more, and its history stays)."
        for model in models_
        if model.pk in uses
    ]


class PolicyForm(StillStoredForm):
    """One policy is always the default: ticking it on another policy moves it there
    (:meth:`PolicyAdmin.save_model`), and it cannot be unticked or deleted where it is. With no
    default, every user outside a policy's groups would have no limits at all."""

    # No Meta: the admin builds the form for Policy with its fieldsets' fields.

    max_output_tokens = output_cap_formfield(
        Policy, OUTPUT_CAP_REFUSED, widget=AdminIntegerFieldWidget
    )

    def clean_is_default(self) -> bool:
        value: bool = self.cleaned_data["is_default"]
        # Held until the save commits (the admin saves in the transaction that validates):
        # what is checked here is still true when the save moves the default, or keeps it.
        Policy.hold_the_default()
        if (
            not value
            and self.instance.pk
            and Policy.objects.filter(pk=self.instance.pk, is_default=True).exists()
        ):
            if not self.initial.get("is_default"):
                # Moved here by another admin while this page was open.
                raise ValidationError(
                    "This policy has become the default since this page was opened (another "
                    "change): reload the page to see it. One policy is always the default."
                )
            raise ValidationError(
                "One policy is always the default: tick “Is default” on another policy "
                "instead, and it takes over from this one."
            )
        return value

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("all_models") and cleaned.get("allowed_models"):
            # Ticked, it allows every enabled model: the chosen ones would be ignored.
            self.add_error(
                "allowed_models",
                "“All models” is ticked, so every enabled model is allowed: untick it to "
                "allow only the models chosen here, or clear this list.",
            )
        elif (
            "all_models" in cleaned
            and not cleaned["all_models"]
            and not cleaned.get("allowed_models")
        ):
            # Saved, no one it applies to could chat or call the API, told only that the
            # model is not allowed. Suspension is the way to stop someone (it says so to them).
            self.add_error(
                "allowed_models",
                "This policy allows no model: choose the models it allows, or tick “All "
                "models”. To stop someone from chatting, suspend them instead (“Suspended”, "
                "under Limits on their account's page).",
            )
        return cleaned

    def _get_validation_exclusions(self) -> set[str]:
        # The one-default constraint is kept by the move in save_model, not refused here.
        # (ModelForm.validate_unique checks the constraints of the fields not excluded here.)
        return {*super()._get_validation_exclusions(), "is_default"}  # type: ignore[misc]


#: Names listed in a line of :func:`describe_who_loses`; the line counts the others.
NAMES_LISTED = 10


def _names(names: list[str], total: int) -> str:
    more = total - len(names)
    return ", ".join(names) + (f" and {more:,} more" if more > 0 else "")


def describe_who_loses(policies: Any) -> list[str]:
    """For each of ``policies``: the users whose own policy it is, and each group that
    carries it with its members, whose limits change when it is deleted (as
    :func:`quota.limits_for` then resolves them)."""
    lines = []
    for policy in policies:
        assigned = User.objects.filter(limits__policy=policy).order_by("username")
        if total := assigned.count():
            names = list(assigned.values_list("username", flat=True)[:NAMES_LISTED])
            lines.append(
                f"It is the own policy of {total:,} user{'s' if total != 1 else ''} "
                f"({_names(names, total)}): their limits become those of their groups' "
                "policies, or of the default policy."
            )
        for group in policy.groups.order_by("name"):
            members = group.user_set.order_by("username")
            total = members.count()
            names = list(members.values_list("username", flat=True)[:NAMES_LISTED])
            who = f"{total:,} member{'s' if total != 1 else ''}"
            lines.append(
                f"Group “{group.name}” carries it ({who}"
                + (f": {_names(names, total)}" if total else "")
                + "): unless their own policy is another, its members get the most generous "
                "of their other groups' policies, or the default policy if none is left."
            )
    return lines


def _policies_said(reached_by: str, names: tuple[str, ...]) -> str:
    quoted = ", ".join(f"“{name}”" for name in names)
    if reached_by == "assigned":
        return f"their own policy {quoted}"
    if reached_by == "default":
        return f"the default policy {quoted}"
    if reached_by == "groups":
        return f"their groups' polic{'y' if len(names) == 1 else 'ies'} {quoted}"
    return "no policy (nothing limited)"


def describe_members_whose_policy_changes(groups: Any) -> list[str]:
    """For each of ``groups``: the policies it carries, and which of its members' effective
    policy changes when it is deleted (with the others deleted alongside), then each such
    member's policy before and after (:func:`quota.policy_changes_without_groups`)."""
    groups = list(groups)
    changes = quota.policy_changes_without_groups([group.pk for group in groups])
    changed = {change.username for change in changes}
    lines = []
    for group in groups:
        carried = list(Policy.objects.filter(groups=group).order_by("name"))
        members = list(group.user_set.order_by("username").values_list("username", flat=True))
        who = f"{len(members):,} member{'s' if len(members) != 1 else ''}"
        if not carried:
            lines.append(
                f"Group “{group.name}” ({who}) carries no policy: no member's limits change."
            )
            continue
        carries = _policy_names(carried)
        moved = [name for name in members if name in changed]
        if not moved:
            outcome = "no member's effective policy changes"
        else:
            listed = _names(moved[:NAMES_LISTED], len(moved))
            outcome = f"the effective policy of {len(moved):,} of its members changes ({listed})"
        others = (
            " The others keep theirs (their own policy, or the same through their other groups)."
            if moved and len(moved) < len(members)
            else ""
        )
        lines.append(
            f"Group “{group.name}” ({who}) carries {carries}: deleting it, {outcome}.{others}"
        )
    for change in changes[:NAMES_LISTED]:
        lines.append(
            f"{change.username}: from {_policies_said(change.reached_by_before, change.before)} "
            f"to {_policies_said(change.reached_by_after, change.after)}."
        )
    if len(changes) > NAMES_LISTED:
        more = len(changes) - NAMES_LISTED
        lines.append(f"… and {more:,} more member{'s' if more != 1 else ''} whose policy changes.")
    return lines


def governed_by(policy: Policy) -> set[int]:
    """The accounts whose limits ``policy`` may set: all active ones for the default, else
    those it is assigned to and the members of its groups (some of whom a policy of their own
    governs instead: told all the same, which costs a page a read)."""
    if policy.is_default:
        return set(User.objects.filter(is_active=True).values_list("pk", flat=True))
    own = UserLimits.objects.filter(policy=policy).values_list("user_id", flat=True)
    members = User.objects.filter(groups__policies=policy).values_list("pk", flat=True)
    return {*own, *members}


@admin.register(Policy)
class PolicyAdmin(AuditedAdmin):
    form = PolicyForm
    list_display = [
        "name",
        "is_default",
        "tokens_per_day_shown",
        "tokens_per_month_shown",
        "max_output_tokens_shown",
        "requests_per_minute_shown",
        "concurrent_streams_shown",
        "api_access",
    ]
    filter_horizontal = ["allowed_models", "groups"]
    fieldsets = [  # type: ignore[assignment]
        (None, {"fields": ["name", "is_default", "groups"]}),
        ("Models", {"fields": ["all_models", "allowed_models"]}),
        (
            "Tokens (blank: unlimited)",
            {"fields": ["tokens_per_day", "tokens_per_month", "max_output_tokens"]},
        ),
        ("Rate", {"fields": ["requests_per_minute", "concurrent_streams", "api_access"]}),
    ]

    # Each limit as the form means it: blank is "unlimited" (Django's list showed "-", as if
    # unset), and a number grouped ("20,000,000": the list read "20000000" beside "1000000").
    @staticmethod
    def limit_shown(value: int | None) -> str:
        return "unlimited" if value is None else f"{value:,}"

    @admin.display(description="Tokens per day", ordering="tokens_per_day")
    def tokens_per_day_shown(self, policy: Policy) -> str:
        return self.limit_shown(policy.tokens_per_day)

    @admin.display(description="Tokens per month", ordering="tokens_per_month")
    def tokens_per_month_shown(self, policy: Policy) -> str:
        return self.limit_shown(policy.tokens_per_month)

    @admin.display(description="Max output tokens", ordering="max_output_tokens")
    def max_output_tokens_shown(self, policy: Policy) -> str:
        return self.limit_shown(policy.max_output_tokens)

    @admin.display(description="Requests per minute", ordering="requests_per_minute")
    def requests_per_minute_shown(self, policy: Policy) -> str:
        return self.limit_shown(policy.requests_per_minute)

    @admin.display(description="Concurrent streams", ordering="concurrent_streams")
    def concurrent_streams_shown(self, policy: Policy) -> str:
        return self.limit_shown(policy.concurrent_streams)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """The confirmation also says whose limits the delete changes: the users it is
        assigned to, and the groups that carry it with their members. Django's page named
        only "Policy_groups object (1)", and nothing of the users."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return [*deleted, *describe_who_loses(objs)], counts, perms_needed, protected

    def changed_by_deletion(self, policy: Policy) -> list[models.Model]:
        # Users it was assigned to fall back to their groups' policies or the default one.
        return list(UserLimits.objects.filter(policy=policy).order_by("pk"))

    def save_model(self, request: HttpRequest, obj: Policy, form: Any, change: bool) -> None:
        old = Policy.objects.filter(pk=obj.pk).first() if change else None
        request._governed_before = governed_by(old) if old else set()  # type: ignore[attr-defined]
        with transaction.atomic():
            Policy.hold_the_default()  # concurrent moves queue, and the later one wins
            if obj.is_default:
                # The default moves here: the previous default gives it up first (audited).
                for previous in Policy.objects.select_for_update().filter(is_default=True):
                    if previous.pk != obj.pk:
                        before = audit.snapshot(previous)
                        # A change of its page too: a save from one opened before is refused.
                        Policy.objects.filter(pk=previous.pk).update(
                            is_default=False, version=models.F(VERSION) + 1
                        )
                        audit.record(
                            request.user, "change", previous, before, audit.stored(previous)
                        )
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        governed_before: set[int] = getattr(request, "_governed_before", set())
        super().save_related(request, form, formsets, change)
        self._warn_of_limits_below_a_reply(request, form.instance)
        self._warn_of_no_enabled_model(request, form.instance)
        if change:
            # Its limits, its models or its groups changed: the open pages of whoever it
            # governed, or governs now, say what they may send now.
            sharing.announce_limits_change_of(governed_before | governed_by(form.instance))

    def _warn_of_no_enabled_model(self, request: HttpRequest, policy: Policy) -> None:
        """Saved all the same (a model may be enabled again, and disabling a policy's last
        one "all the same" left it so knowingly), but said: a policy allowing only disabled
        models was saved without a word, its users left with no model, as a policy allowing
        none (refused) would leave them."""
        if quota.usable_models(quota.policy_limits(policy)):
            return
        disabled = [] if policy.all_models else [m.name for m in policy.allowed_models.all()]
        which = (
            f"the model{'' if len(disabled) == 1 else 's'} it allows "
            f"({', '.join(disabled)}) {'is' if len(disabled) == 1 else 'are'} disabled"
            if disabled
            else "no model is enabled"
        )
        self.message_user(
            request,
            f"This policy leaves its users with no model to use: {which}. They (but those "
            "whose other groups' policies allow one) can no longer chat or call the API, and "
            "are told why. Enable a model it allows, or allow an enabled one.",
            messages.WARNING,
        )

    def _warn_of_limits_below_a_reply(self, request: HttpRequest, policy: Policy) -> None:
        for warning in limits_below_a_reply(quota.policy_limits(policy), "under this policy"):
            self.message_user(request, warning, messages.WARNING)

    def has_delete_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        if obj is not None and obj.is_default:
            return False  # make another policy the default first (a batch with it: refused)
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Policy) -> None:
        with transaction.atomic():
            # The page checked it was not the default; another admin may have moved the
            # default here since. Checked again with moves held off: refused as the default is.
            Policy.hold_the_default()
            if Policy.objects.filter(pk=obj.pk, is_default=True).exists():
                raise PermissionDenied("This policy has become the default: it cannot be deleted.")
            governed = governed_by(obj)
            super().delete_model(request, obj)
            sharing.announce_limits_change_of(governed)


admin.site.unregister(Group)

# A group's page names at most this many of its members (and links to the list of them all).
MEMBERS_SHOWN = 20


@admin.register(Group)
class GroupAdmin(AuditedAdmin, BaseGroupAdmin):
    """The stock group admin, audited: a group decides which policies apply to its members.
    Its permissions are granted by superusers only (:mod:`rights`): read-only to other staff,
    who could otherwise give a group of theirs any permission. A group that carries
    permissions is a superuser's to delete too: its delete takes them from every member, as
    taking each out of it would, which is a superuser's alone.

    Its page also says who is in it and which policies it carries, read-only, with where each
    is chosen: neither is on the stock page (members are picked on each user's page, a
    policy's groups on the policy's), so an admin who made a group for a policy found nothing
    here to connect them."""

    fieldsets = [
        (None, {"fields": ["name", "its_members", "its_policies"]}),
        (
            "Permissions",
            {
                "fields": ["permissions"],
                "description": "Rights in this admin only. Which models and how many tokens "
                "members may use come from the policies above.",
            },
        ),
    ]
    readonly_fields = ["its_members", "its_policies"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = [*super().get_readonly_fields(request, obj)]
        if not rights.grants_rights(request.user):  # type: ignore[arg-type]
            fields.append("permissions")
        return fields

    @admin.display(description="Members")
    def its_members(self, group: Group) -> str:
        how = "Add people on each user's page (Users → the user → Groups)."
        names = list(
            User.objects.filter(groups=group)
            .order_by("username")
            .values_list("username", flat=True)
            if group.pk
            else []
        )
        if not names:
            return format_html("None yet. {}", how)
        shown = ", ".join(names[:MEMBERS_SHOWN])
        more = f" and {len(names) - MEMBERS_SHOWN} more" if len(names) > MEMBERS_SHOWN else ""
        listed = reverse("admin:conversations_user_changelist") + f"?groups__id__exact={group.pk}"
        return format_html('{}{} (<a href="{}">list</a>). {}', shown, more, listed, how)

    @admin.display(description="Policies")
    def its_policies(self, group: Group) -> str:
        how = "A policy applies to the groups chosen on its page (Policies → the policy → Groups)."
        carried = list(Policy.objects.filter(groups=group).order_by("name")) if group.pk else []
        if not carried:
            return format_html("None: it changes no one's limits. {}", how)
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:conversations_policy_change", args=[policy.pk]), policy.name)
                for policy in carried
            ),
        )
        return format_html("{}. {}", links, how)

    def has_delete_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        if (
            obj is not None
            and not rights.grants_rights(request.user)  # type: ignore[arg-type]
            and rights.groups_with_permissions([obj])
        ):
            return False  # a batch with it: refused (Django's "permissions needed")
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """The confirmation also says whose limits the delete changes: the policies each group
        carries, and the members whose effective policy moves, from what to what. Django's
        page listed only "User-group relationship" rows, and nothing of anyone's limits."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return (
            [*deleted, *describe_members_whose_policy_changes(objs)],
            counts,
            perms_needed,
            protected,
        )

    def changed_by_deletion(self, group: Group) -> list[models.Model]:
        # Its policies lose it, and its members lose it and those policies' limits.
        return [
            *Policy.objects.filter(groups=group).order_by("pk"),
            *User.objects.filter(groups=group).order_by("pk"),
        ]


class AnnouncingAdmin(AuditedAdmin):
    """Audited, and after each save or delete the open sockets that the change may concern
    re-check whether they may stay (:meth:`concerned` says which conversations)."""

    # Each subclass defines it: the conversations an object's change may concern.
    concerned: Callable[[Any], list[Any]]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        old = type(obj).objects.filter(pk=obj.pk).first() if change else None
        request._announce = self.concerned(old) if old is not None else []  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_announce", [])
        sharing.announce_access_change(*dict.fromkeys([*before, *self.concerned(form.instance)]))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        concerned = self.concerned(obj)
        super().delete_model(request, obj)
        sharing.announce_access_change(*concerned)


def describe_who_sees_after(teams: list[Team]) -> list[str]:
    """Who sees the conversations shared with ``teams`` once they are deleted (each is then
    shared with no team): no one but their owners and collaborators while another team is
    left; every active user once none is, with those already shared with no team."""

    def conversations(count: int) -> str:
        return f"{count:,} conversation{'' if count == 1 else 's'}"

    shared = Conversation.objects.alive().filter(team__in=teams).count()
    if Team.objects.exclude(pk__in=[team.pk for team in teams]).exists():
        if not shared:
            return []
        one = shared == 1
        return [
            f"The {conversations(shared)} shared with {'it' if len(teams) == 1 else 'them'} "
            f"will be shared with no team: no one but {'its owner' if one else 'their owners'} "
            f"and collaborators will see {'it' if one else 'them'}, until "
            f"{'its owner chooses' if one else 'their owners choose'} another team."
        ]
    everyone = shared + len(sharing.conversations_shared_with_no_team())
    if not everyone:
        return []
    return [
        f"No team will be left: the {conversations(everyone)} shared with a team or with none "
        "will be shared with every active user, as in a deployment without teams."
    ]


@admin.register(Team)
class TeamAdmin(AnnouncingAdmin):
    list_display = ["name"]
    filter_horizontal = ["members"]

    def concerned(self, team: Team) -> list[Any]:
        """What is shared with the team, and what its members collaborate on or have
        collaborators on: a collaborator sees and posts only while in a team with the owner."""
        shared = Conversation.objects.filter(team=team).values_list("pk", flat=True)
        members = team.members.values_list("pk", flat=True) if team.pk else []
        return [*shared, *sharing.conversations_with_collaborators(members)]

    # Its members edited or the team deleted: the members who gain or lose its conversations
    # list them or unlist them (``sharing.announce_shared_listing``). The first team created,
    # or the last one deleted, changes who sees every conversation shared with no team
    # (``sharing.conversations_shared_with_no_team``): everyone, or no one but collaborators;
    # and who collaborates on what (``sharing.conversations_with_collaborators``): anyone
    # named, or those in a team with the owner.
    # Those who lose them unlist them and their open views of them close (4403); those who
    # gain them list them, and a view that had closed comes back.
    # A team created or deleted holds the set of teams (``Team.hold_the_set``) until it commits:
    # whether it is the first or the last is decided against the others' committed teams.
    # Tolerated: an owner sharing a conversation with no team meanwhile is told by their own
    # action, as the access it computes at its commit says.
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            Team.hold_the_set()
        before = self.concerned(obj) if change else []
        first = not change and not Team.objects.exists()
        shared_with_everyone = (
            [
                *sharing.conversations_shared_with_no_team(),
                *sharing.conversations_with_collaborators(),
            ]
            if first
            else []
        )
        request._shared_before = sharing.shared_listings([*before, *shared_with_everyone])  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)
        request._announce = [*request._announce, *shared_with_everyone]  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_shared_before", {})
        sharing.announce_shared_listing([*before, *self.concerned(form.instance)], before)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None or Team.objects.exists():
            return fieldsets
        shared = len(sharing.conversations_shared_with_no_team())
        if not shared:
            return fieldsets
        # The first team: what every active user sees now will be seen by no one else.
        said = f"{shared:,} conversation{'' if shared == 1 else 's'}"
        description = (
            f"This is the first team: the {said} now shared with everyone will be shared with "
            "no team, so with no one but their owners and collaborators, until their owners "
            "choose a team."
        )
        return [(title, {**options, "description": description}) for title, options in fieldsets]

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """The confirmation also says who then sees what the teams shared (Django's page
        listed only "Team-user relationship" rows): no one else, or, once no team is left,
        every active user, with what was shared with no team."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return [*deleted, *describe_who_sees_after(list(objs))], counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        # Its own transaction under the changelist's "delete selected" (Django runs the
        # action in none), so that the hold lasts until the delete commits.
        with transaction.atomic():
            Team.hold_the_set()
            last = not Team.objects.exclude(pk=obj.pk).exists()
            shared_with_no_one = (
                [
                    *sharing.conversations_shared_with_no_team(),
                    *sharing.conversations_with_collaborators(),
                ]
                if last
                else []
            )
            before = sharing.shared_listings([*self.concerned(obj), *shared_with_no_one])
            super().delete_model(request, obj)
            sharing.announce_shared_listing(before, before)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    """Read-only but for revoking (an action) and deleting, both audited."""

    list_display = [
        "name",
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    # The key's hash is not shown (nor audited): whoever reads it could test guesses offline.
    exclude = ["hashed"]
    readonly_fields = [
        "user",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "save_history",
        "expires_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """A key's page has nothing to change (it is revoked by the list's action, deleted by
        its link): no Save buttons, which said "changed successfully" of a change not made."""
        no_save = {"show_save": False, "show_save_and_continue": False}
        return super().change_view(
            request, object_id, form_url, {**no_save, **(extra_context or {})}
        )

    # A change: not for staff who may only view keys. Revoked as its owner revokes it (one
    # conditional update, one audit entry), so a key the owner revokes meanwhile keeps its
    # time and is not revoked (nor audited) twice.
    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        revoked = sum(
            api_keys.revoke_key(key, request.user)  # type: ignore[arg-type]
            for key in queryset.filter(revoked_at__isnull=True)
        )
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)


@admin.register(SharingSettings)
class SharingSettingsAdmin(AnnouncingAdmin):
    """One row: the list goes straight to it; it is never added twice nor deleted. Saved, every
    socket on a conversation with a live link re-checks (public links off: anonymous viewers
    leave)."""

    fields = ("allow_public_links",)

    def concerned(self, settings: SharingSettings) -> list[Any]:
        return list(sharing.conversations_with_live_links())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        row = SharingSettings.current()
        return redirect(reverse("admin:conversations_sharingsettings_change", args=[row.pk]))


# A browser's "Now" may run a little ahead of the server's clock.
REVOCATION_CLOCK_SLACK = timedelta(minutes=1)


class ShareLinkForm(StillStoredForm):
    def clean_revoked_at(self) -> datetime | None:
        # Any value revokes the link at once (access.access_shared_link): a future one only
        # made a dead link claim it would end later.
        revoked_at: datetime | None = self.cleaned_data["revoked_at"]
        if revoked_at is not None and revoked_at > timezone.now() + REVOCATION_CLOCK_SLACK:
            raise ValidationError(
                "A link is revoked as soon as this is set: enter now or earlier. To end the "
                "link later, set “Expires at” instead."
            )
        return revoked_at

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # the row locked, if stored
        stored = ShareLink.objects.filter(pk=self.instance.pk).first()
        dates = ("revoked_at", "expires_at")
        if (
            stored is not None
            and access.link_ended(stored, timezone.now())
            and any(d in self.fields and cleaned.get(d) != getattr(stored, d) for d in dates)
        ):
            # It ended after this page was read (its fields were editable then): an end stays,
            # and a change of its dates is not said to be saved when it cannot be.
            raise ValidationError(
                "This link ended (revoked or expired) after this page was opened, and an ended "
                "link stays ended: nothing was saved. Its owner can make a new link."
            )
        return cleaned


@admin.register(ShareLink)
class ShareLinkAdmin(AnnouncingAdmin):
    form = ShareLinkForm
    list_display = ["conversation", "created_by", "created_at", "expires_at", "revoked_at"]
    exclude = ["hashed"]  # not shown, as a key's is not
    readonly_fields = ["conversation", "created_by", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        # A page opened while the link lived sends its dates: read, so that a change of them
        # is refused saying why (``ShareLinkForm.clean``) rather than dropped unsaid.
        sent_dates = request.method == "POST" and "expires_at_0" in request.POST
        if obj is not None and access.link_ended(obj, timezone.now()) and not sent_dates:
            # An ended link stays ended, as a revoked key does: cleared or moved on here, it
            # opened again for everyone who kept it, its owner not told (their sharing page
            # listed it as live again). A form opened before the link ended cannot bring it
            # back either: its fields are read from the link as it is when the form is sent.
            fields += ["expires_at", "revoked_at"]
        return fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            # Ended since the form was read (its owner revoked it meanwhile): the form's dates,
            # read while it lived, are not written back over the end. Locked until the save
            # commits, so a revocation cannot come between this look and the write either.
            stored = ShareLink.objects.select_for_update().filter(pk=obj.pk).first()
            if stored is not None and access.link_ended(stored, timezone.now()):
                obj.revoked_at, obj.expires_at = stored.revoked_at, stored.expires_at
        super().save_model(request, obj, form, change)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def concerned(self, link: ShareLink) -> list[Any]:
        return [link.conversation_id]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "role", "author", "status", "finish_reason", "content"]
    readonly_fields = ["created_at", "role", "author", "status", "finish_reason", "content"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ParamsField(forms.JSONField):
    """JSON as the chat reads it (NaN, Infinity and nesting too deep for the parser are not
    JSON: they were stored, or failed, as an internal error); blank: no parameters."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                text.loads(value)
            except ValueError as error:
                raise ValidationError(f"Enter valid JSON: {error}.", code="invalid") from None
        parsed = super().to_python(value)
        return {} if parsed is None else parsed

    def bound_data(self, data: Any, initial: Any) -> Any:
        # The form shown again keeps what was typed, even where the parser gives up.
        if isinstance(data, str) and not self.disabled:
            try:
                text.loads(data)
            except ValueError:
                return InvalidJSONInput(data)
        return super().bound_data(data, initial)


class ConversationForm(StillStoredForm):
    """The parameters are held to the chat's rules for the conversation's model
    (:func:`~conversations.params.check_conversation_params`) and kept as the chat keeps them:
    a value the chat would refuse, saved here, failed every later message of the conversation.
    The system prompt is held to the chat's bound."""

    params = ParamsField(
        required=False,
        help_text="An object of the chat's parameters (temperature, top_p, max_tokens, stop, "
        "...), checked against the model. Blank: none.",
    )

    def clean_system_prompt(self) -> str:
        # The chat's bound: a longer prompt failed the owner's every later settings change.
        prompt = self.cleaned_data["system_prompt"]
        try:
            return text.bounded(
                prompt, MAX_SYSTEM_PROMPT_CHARS, label="The system prompt", param="system_prompt"
            )
        except InvalidParameter as error:
            raise ValidationError(error.message) from None

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        model = cleaned.get("model")
        if model is not None and "params" in cleaned:
            try:
                cleaned["params"] = check_conversation_params(cleaned["params"], model)
            except InvalidParameter as error:
                self.add_error("params", error.message)
        return cleaned


@admin.register(Conversation)
class ConversationAdmin(DeletesConversationsAdmin, AnnouncingAdmin):
    """Deleted here (its page or "delete selected"), a conversation goes for good with its
    messages and share links; its ledger rows stay. Its open views close as after its owner's
    delete (4404), and its replies being written stop (``generation.stop_replies``), as they do
    when "deleted at" is filled in on its page (a delete its owner can undo). Deleted,
    restored, renamed or given to another owner here, its owners' open tabs list it as it is
    now (``sharing.announce_listing_change``; a delete for good: ``conversation.deleted``).
    Its title and settings changed here reach its open pages (``conversation.updated``,
    ``conversation.settings``)."""

    form = ConversationForm
    list_display = ["__str__", "owner", "model", "visibility", "updated_at", "deleted_at"]
    list_filter = ["visibility", "model"]
    search_fields = ["title", "owner__username"]
    raw_id_fields = ["owner", "forked_from"]
    inlines = [MessageInline]

    def concerned(self, conversation: Conversation) -> list[Any]:
        return [conversation.pk]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # As the owner's tabs list it before the change (deleted or restored here, given to
        # another owner, renamed): they are told what changed once it is saved.
        listed = Conversation.objects.filter(pk=obj.pk).first() if change else None
        request._listed_before = listed  # type: ignore[attr-defined]
        # And as the accounts it is shared with list it (made private here, say).
        request._shared_before = sharing.shared_listings([obj.pk]) if change else {}  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before, after = getattr(request, "_listed_before", None), form.instance
        sharing.announce_listing_change(before, after)
        sharing.announce_shared_listing([after.pk], getattr(request, "_shared_before", {}))
        if before is not None and after.title and before.title != after.title:
            # Renamed here: its open pages (and share links' readers) show the new title, as
            # after a rename in the chat.
            sharing.announce_title(after.pk, after.title)
        if before is not None and settings_version(before) != settings_version(after):
            # Its model, system prompt or parameters changed here: its open pages follow, as
            # after a save in the chat (their next save is based on these).
            stored = Conversation.objects.select_related("model").get(pk=after.pk)
            sharing.announce_settings(after.pk, settings_of(stored))
        if before is not None and before.deleted_at is None and after.deleted_at is not None:
            # Deleted here ("deleted at" filled in), as by its owner: its replies being written
            # stop, charged what they used (they ran to their end, charged in full).
            generation.stop_replies(after.pk)

    def changed_by_deletion(self, conversation: Conversation) -> list[models.Model]:
        # Its share links go with it; forks of it lose their origin (forked_from set to null).
        return [
            *ShareLink.objects.filter(conversation=conversation)
            .select_related("conversation")  # named in its entry, once deleted
            .order_by("pk"),
            *Conversation.objects.filter(forked_from__conversation=conversation).order_by("pk"),
        ]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """Read-only: messages are written by the chat, not edited by hand."""

    list_display = ["id", "conversation", "role", "author", "status", "finish_reason", "created_at"]
    list_filter = ["status", "role"]
    search_fields = ["content", "client_id"]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "account",
        "model",
        "purpose",
        "state",
        "outcome",
        "prompt_tokens",
        "cache_hit_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "cost",
        "estimated",
    ]
    list_filter = ["purpose", "state", "outcome", "model", "estimated"]
    search_fields = ["user__username", "username"]
    date_hierarchy = "created_at"

    @admin.display(description="user", ordering="user__username")
    def account(self, record: UsageRecord) -> str:
        return record.account_name

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("user", "model")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_name", "action", "target_type", "target_repr", "changes"]
    list_filter = ["action", "target_type"]
    search_fields = ["target_repr", "actor_name"]
    actions = ["export_csv"]

    date_hierarchy = "at"
    # Its page: what changed, field by field and by name, above the rows as stored; one
    # "actor", the name kept (the account itself may be deleted since).
    readonly_fields = ["what_changed"]
    fields = [
        "at",
        "actor_name",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "what_changed",
        "before",
        "after",
    ]

    @admin.display(description="fields changed")
    def changes(self, entry: AuditEntry) -> str:
        return ", ".join(audit.changed_fields(entry.before, entry.after))

    @admin.display(description="what changed")
    def what_changed(self, entry: AuditEntry) -> str:
        rows = audit.readable_changes(entry)
        if not rows:
            return "nothing"
        return format_html(
            '<table class="audit-changes"><thead><tr><th scope="col">field</th>'
            '<th scope="col">before</th><th scope="col">after</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            format_html_join("", '<tr><th scope="row">{}</th><td>{}</td><td>{}</td></tr>', rows),
        )

    @admin.action(description="Export the selected entries as CSV")
    def export_csv(self, request: HttpRequest, queryset: Any) -> HttpResponseBase:
        return stream_csv(
            "audit.csv",
            [
                "at",
                "actor",
                "action",
                "target_type",
                "target_id",
                "target",
                "changes",
                "before",
                "after",
            ],
            queryset,
            _audit_columns,
        )


def _audit_columns(entry: AuditEntry) -> list[Any]:
    return [
        entry.at,
        entry.actor_name,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.target_repr,
        # What changed as its page says it, related rows by name (a user's groups, a policy's
        # models): "field: before -> after", fields apart by "; " (one line a row: a cell of
        # several lines breaks tools that read a CSV a line a row).
        "; ".join(
            f"{name}: {before or '-'} -> {after or '-'}"
            for name, before, after in audit.readable_changes(entry)
        ),
        # JSON, as stored (not Python's repr: True/None, single quotes).
        "" if entry.before is None else json.dumps(entry.before),
        "" if entry.after is None else json.dumps(entry.after),
    ]
