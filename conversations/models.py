"""The data: users, the model registry, conversations and their message trees."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

# A price (USD per 1M tokens) is never negative: it would credit every call it costs.
NOT_NEGATIVE = MinValueValidator(Decimal(0))
# A model's output limit, far above any model's (hundreds of thousands today): a call
# reserves its padded prompt plus up to this in the ledger's 32-bit token counts, which a
# limit near their maximum overflowed (every call of the model failed at admission).
MAX_OUTPUT_TOKENS = 10_000_000
# An output cap (a policy's "Max output tokens", a user's own) is at least 1 token; blank is
# "no cap". Every call of its users is sent with a max_tokens within it and the upstream
# refuses 0; a 0, once saved, read as "no cap" in some places and as "nothing allowed" in
# others (migration 0030 turned those stored back to blank, and a constraint keeps them out).
OUTPUT_CAP_REFUSED = "The output cap is at least 1 token: leave it blank for no cap."
OUTPUT_CAP_AT_LEAST_ONE = MinValueValidator(1, message=OUTPUT_CAP_REFUSED)


_Revocable = TypeVar("_Revocable", bound=models.Model)


def saves_counter() -> models.PositiveIntegerField:  # type: ignore[type-arg]
    """``version`` of a row the admin edits on a page of its own (an account with its limits,
    a model with its dated prices, a policy): how many saves of that page changed it. The page
    carries the count it was opened at, and a save from a page opened before another one's
    is refused (``admin.StillStoredForm``) instead of writing back, as Django's admin did,
    every field as that page had read it. Not a form field, nor in the audit log.

    Tolerated: a full save elsewhere of a copy read before an admin's save (a password
    changed by its user writes the whole account row, read when the request began) writes the
    count back as read, as it writes back every other column; the window is that request's."""
    # A default in the database too: a process of the previous release inserts rows without
    # it while a deployment rolls.
    return models.PositiveIntegerField(default=0, db_default=0, editable=False)


def live(rows: models.QuerySet[_Revocable]) -> models.QuerySet[_Revocable]:
    """Those of ``rows`` (share links, API keys: rows with ``expires_at`` and ``revoked_at``)
    neither revoked nor expired now."""
    return rows.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()), revoked_at__isnull=True
    )


class User(AbstractUser):
    """Our own user model from the first migration, so later fields need no swap."""

    version = saves_counter()

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class ModelConfig(models.Model):
    """A model users can pick, mapped to whatever the upstream calls it today.

    Upstream ids are data, not constants: DeepSeek renamed its models in 2026, and the admin
    re-points ``upstream_model`` without breaking conversations that reference this row.
    """

    class ReasoningPassback(models.TextChoices):
        SEND = "send", "Send back (thinking-mode models, V3.2 and later)"
        STRIP = "strip", "Strip (legacy R1 reasoner)"

    name = models.SlugField(
        max_length=64, unique=True, help_text="What users and API clients ask for."
    )
    display_name = models.CharField(max_length=100)
    upstream_model = models.CharField(max_length=100, help_text="The upstream's model id.")
    thinking = models.BooleanField(default=False, help_text="Ask the upstream for thinking mode.")
    reasoning_passback = models.CharField(
        max_length=8, choices=ReasoningPassback.choices, default=ReasoningPassback.SEND
    )
    supports_tools = models.BooleanField(default=True)
    supports_json = models.BooleanField(default=True)
    supports_logprobs = models.BooleanField(default=True)
    context_window = models.PositiveIntegerField(default=131072)
    max_output_tokens = models.PositiveIntegerField(
        default=8192, validators=[MaxValueValidator(MAX_OUTPUT_TOKENS)]
    )
    default_max_tokens = models.PositiveIntegerField(default=4096)
    # Prices in USD per 1M tokens.
    price_input_cache_hit = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal(0), validators=[NOT_NEGATIVE]
    )
    price_input_cache_miss = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal(0), validators=[NOT_NEGATIVE]
    )
    price_output = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal(0), validators=[NOT_NEGATIVE]
    )
    enabled = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = saves_counter()

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Each limit refused on its own field: the output limit and the context window are
        at least 1 token, the window holds the output limit (the reply is part of the
        context), and the default output budget lies between 1 and the output limit."""
        errors: dict[str, str] = {}
        output, default, context = (
            self.max_output_tokens,
            self.default_max_tokens,
            self.context_window,
        )
        if output is not None and output < 1:
            # Every reply is sent with a max_tokens within it: the upstream refuses 0.
            errors["max_output_tokens"] = "The output limit is at least 1 token."
        elif output is not None and default is not None and not 1 <= default <= output:
            # Sent as max_tokens when a reply asks for none (chat, titles).
            errors["default_max_tokens"] = (
                f"Must be between 1 and the model's output limit ({output:,})."
            )
        if context is not None and context < 1:
            errors["context_window"] = "The context window is at least 1 token."
        elif context is not None and output is not None and output >= 1 and context < output:
            errors["context_window"] = (
                f"The context window ({context:,} token{'' if context == 1 else 's'}) is "
                f"smaller than the output limit "
                f"({output:,}): a reply is part of the context, so enter at least {output:,} "
                "here, or lower the output limit."
            )
        if errors:
            raise ValidationError(errors)


class ConversationQuerySet(models.QuerySet["Conversation"]):
    def alive(self) -> ConversationQuerySet:
        return self.filter(deleted_at__isnull=True)

    def listed(self) -> ConversationQuerySet:
        """Alive, and holding a message or a title its owner gave it: one nothing was sent in
        yet ("New chat", or its first message refused at admission) is listed once its first
        message is admitted (a ``conversation.listed`` then: ``actions.Turn.first``)."""
        has_message = Exists(Message.objects.filter(conversation=OuterRef("pk")))
        return self.alive().filter(has_message | ~Q(title=""))

    def abandoned(self, created_before: datetime) -> ConversationQuerySet:
        """Empty since before ``created_before``, private, and holding nothing its owner set
        (no title, system prompt or parameters): nothing of it is lost if it goes."""
        return self.filter(
            ~Exists(Message.objects.filter(conversation=OuterRef("pk"))),
            created_at__lt=created_before,
            title="",
            system_prompt="",
            params={},
            visibility=Conversation.Visibility.PRIVATE,
            collaborators=None,
        )


class Conversation(models.Model):
    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private"
        TEAM = "team", "Shared with a team"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="conversations")
    system_prompt = models.TextField(blank=True)
    # Sampling and output parameters (temperature, top_p, max_tokens, ...), validated on write.
    params = models.JSONField(default=dict, blank=True)
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    team = models.ForeignKey(
        "Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    collaborators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="collaborations"
    )
    forked_from = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="forks"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            # The sidebar: a user's live conversations, newest first.
            models.Index(
                fields=["owner", "-updated_at"],
                name="conv_owner_recent",
                condition=Q(deleted_at__isnull=True),
            ),
            models.Index(fields=["visibility", "team", "-updated_at"], name="conv_shared_recent"),
            GinIndex(SearchVector("title", config="english"), name="conv_title_search"),
        ]

    def __str__(self) -> str:
        return self.title or "New chat"


class Message(models.Model):
    """One node of a conversation's tree: edits and regenerations make siblings."""

    class Role(models.TextChoices):
        SYSTEM = "system", "System"
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        TOOL = "tool", "Tool"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        CANCELLED = "cancelled", "Cancelled"
        INTERRUPTED = "interrupted", "Interrupted"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model = models.ForeignKey(
        ModelConfig, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    content = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    tool_calls = models.JSONField(null=True, blank=True)
    tool_call_id = models.CharField(max_length=100, blank=True)
    logprobs = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COMPLETE)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    finish_reason = models.CharField(max_length=40, blank=True)
    usage = models.JSONField(null=True, blank=True)
    # Per-message parameters the sender chose (override the conversation's).
    params = models.JSONField(default=dict, blank=True)
    # The client's idempotency id: the same id twice returns the same message.
    client_id = models.CharField(max_length=64, blank=True)
    # Stream sequence number reached, checkpointed with the text.
    seq = models.PositiveIntegerField(default=0)
    # The channel of the process whose generation task holds this reply (snapshots, cancel).
    generation_channel = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~Q(client_id=""),
                name="message_client_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="msg_conv_created"),
            # Full-text search over message text (conversations/search.py uses the same expression).
            GinIndex(SearchVector("content", config="english"), name="msg_content_search"),
            # The reaper: rows still streaming, by heartbeat age.
            models.Index(
                fields=["heartbeat_at"],
                name="msg_streaming_heartbeat",
                condition=Q(status__in=["pending", "streaming"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.id}"


def store_chain(messages: list[Message]) -> None:
    """Store ``messages`` as one chain, each the parent of the next (the first keeps its own
    parent), in a few statements: one INSERT a row took ~1 ms each, so an import or an API call
    copied to history with thousands of messages held a database thread for seconds to a
    minute. Their ids are made before they are stored, so a row names its parent before either
    is; their times are made one microsecond apart, so the newest is the chain's end (what the
    page opens and an export takes) as when each was stored by itself."""
    for parent, message in itertools.pairwise(messages):
        message.parent = parent
    Message.objects.bulk_create(messages, batch_size=500)
    if not messages:
        return
    # created_at is set when saved (auto_now_add), the same microsecond for many rows of a batch.
    start = messages[0].created_at
    times = [start + timedelta(microseconds=i) for i in range(len(messages))]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE conversations_message AS m SET created_at = t.at, updated_at = t.at "
            "FROM unnest(%s::uuid[], %s::timestamptz[]) AS t(id, at) WHERE m.id = t.id",
            [[message.id for message in messages], times],
        )
    for message, at in zip(messages, times, strict=True):
        message.created_at = message.updated_at = at


class UsageRecord(models.Model):
    """The ledger: exactly one row per upstream call.

    Admission inserts the row as ``reserved`` with the worst case it may cost; settlement turns
    it into the provider's counts (or an estimate, flagged) once the call ends, whatever way
    it ended. Every report and limit is a query over this table.
    """

    class Purpose(models.TextChoices):
        CHAT = "chat", "Chat"
        TITLE = "title", "Title"
        API = "api", "API"

    class State(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        SETTLED = "settled", "Settled"

    # The ledger outlives accounts (past costs stay in every total): a deleted account's rows
    # keep its name in ``username`` and lose the link.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage",
    )
    username = models.CharField(
        max_length=150,
        blank=True,
        db_default="",  # admission's SQL inserts the row without it
        help_text="The account's name, kept once it is deleted.",
    )
    model = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_records"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.RESERVED)
    reserved_tokens = models.PositiveIntegerField(default=0)
    # The outcome of the call: complete, cancelled, interrupted, failed.
    outcome = models.CharField(max_length=12, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    cache_hit_tokens = models.PositiveIntegerField(default=0)
    cache_miss_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    # USD. Ten digits before the point: the most the largest token counts the columns hold
    # cost at the highest prices the registry accepts (999999.9999 per 1M tokens).
    cost = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    estimated = models.BooleanField(
        default=False, help_text="Counts are our estimate, not the provider's."
    )
    # The counters the reservation was taken from (released against the same ones).
    day_start = models.DateTimeField(null=True, blank=True)
    month_start = models.DateTimeField(null=True, blank=True)
    holds_stream = models.BooleanField(default=False)
    # A continuation's reply already held this much text (content + reasoning) when the call
    # was admitted: billed before, so an estimate of this call's output starts after it.
    output_base_chars = models.PositiveIntegerField(default=0, db_default=0)
    # The worst case the call was admitted with (padded prompt estimate + max_tokens): what it
    # holds again if the reaper settled it while its task lived and the task takes it back.
    worst_case_tokens = models.PositiveIntegerField(default=0, db_default=0)
    api_key = models.ForeignKey(
        "ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="usage_user_time"),
            models.Index(fields=["created_at"], name="usage_time"),
            models.Index(fields=["state"], name="usage_reserved", condition=Q(state="reserved")),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.total_tokens or self.reserved_tokens} tokens"

    @property
    def account_name(self) -> str:
        """Whose call it was: the account's name, or the name it had if it was deleted."""
        if self.user is not None:
            return self.user.username
        return f"{self.username} (deleted)" if self.username else "(deleted)"


# --- usage limits ------------------------------------------------------------------------------


# The advisory lock key of :meth:`Policy.hold_the_default` (any constant of our own).
_DEFAULT_POLICY_LOCK = 0x706F6C6963790001


class Policy(models.Model):
    """A named set of limits. One is the default; others are assigned to groups or users.

    Blank limits are unlimited. A user in several groups gets the most generous of their
    groups' policies, field by field, unless the user has a policy or overrides of their own.
    """

    name = models.CharField(max_length=100, unique=True)
    is_default = models.BooleanField(
        default=False, help_text="Applies to users with no other policy."
    )
    all_models = models.BooleanField(default=True, help_text="Every enabled model is allowed.")
    allowed_models = models.ManyToManyField(ModelConfig, blank=True, related_name="+")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="policies")
    tokens_per_day = models.PositiveBigIntegerField(null=True, blank=True)
    tokens_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[OUTPUT_CAP_AT_LEAST_ONE],
        help_text="Cap on max_tokens per request (at least 1).",
    )
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    concurrent_streams = models.PositiveIntegerField(null=True, blank=True)
    api_access = models.BooleanField(default=True, help_text="May use the DeepSeek-compatible API.")
    updated_at = models.DateTimeField(auto_now=True)
    version = saves_counter()

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_policy"
            ),
            models.CheckConstraint(
                condition=Q(max_output_tokens__isnull=True) | Q(max_output_tokens__gte=1),
                name="policy_max_output_tokens_at_least_one",
                violation_error_message=OUTPUT_CAP_REFUSED,
            ),
        ]

    def __str__(self) -> str:
        return self.name + (" (default)" if self.is_default else "")

    @staticmethod
    def hold_the_default() -> None:
        """Until the current transaction ends, no other transaction moves the default.

        Locking the default's row is not enough: two moves queue on it, and the second, let
        through once the first commits, finds no default any more (the row it waited for gave
        it up), takes none away and breaks the one-default constraint. They queue here
        instead, and the second sees the first's move. Outside a transaction: no effect."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DEFAULT_POLICY_LOCK])


LIMIT_FIELDS = (
    "tokens_per_day",
    "tokens_per_month",
    "max_output_tokens",
    "requests_per_minute",
    "concurrent_streams",
)
"""The limits a policy sets and a user's own limits override, field by field."""

UNLIMITED = "unlimited"


class UserLimits(models.Model):
    """A user's own limits: suspension, a policy of their own, and per-field overrides.

    Each limit is overridden three ways: blank (NULL, the policy's value, as every row
    stored before the choice existed), a number, or unlimited (``<field>_unlimited``, the
    number then blank: a constraint holds it so). Read them with :meth:`override`.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="limits"
    )
    suspended = models.BooleanField(default=False, help_text="May sign in and read, but not send.")
    policy = models.ForeignKey(
        Policy,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Replaces the user's group policies.",
    )
    tokens_per_day = models.PositiveBigIntegerField(null=True, blank=True)
    tokens_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[OUTPUT_CAP_AT_LEAST_ONE]
    )
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    concurrent_streams = models.PositiveIntegerField(null=True, blank=True)
    # A default in the database too: a process still running the previous release inserts
    # rows without these columns while a deployment rolls.
    tokens_per_day_unlimited = models.BooleanField(default=False, db_default=False)
    tokens_per_month_unlimited = models.BooleanField(default=False, db_default=False)
    max_output_tokens_unlimited = models.BooleanField(default=False, db_default=False)
    requests_per_minute_unlimited = models.BooleanField(default=False, db_default=False)
    concurrent_streams_unlimited = models.BooleanField(default=False, db_default=False)

    class Meta:
        verbose_name = "limits"
        verbose_name_plural = "limits"
        constraints = [
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{name}_unlimited": False}) | Q(**{f"{name}__isnull": True}),
                    name=f"userlimits_{name}_unlimited_or_a_number",
                    violation_error_message=f"{name.replace('_', ' ').capitalize()} is either "
                    "unlimited or a number, not both.",
                )
                for name in LIMIT_FIELDS
            ),
            models.CheckConstraint(
                condition=Q(max_output_tokens__isnull=True) | Q(max_output_tokens__gte=1),
                name="userlimits_max_output_tokens_at_least_one",
                violation_error_message=OUTPUT_CAP_REFUSED,
            ),
        ]

    def __str__(self) -> str:
        return f"Limits of {self.user}"

    def override(self, name: str) -> int | str | None:
        """This user's own value of the limit ``name``: a number, :data:`UNLIMITED`, or None
        (not overridden: the policy's value applies)."""
        if getattr(self, f"{name}_unlimited"):
            return UNLIMITED
        value: int | None = getattr(self, name)
        return value

    def set_override(self, name: str, value: int | str | None) -> None:
        """Set the limit ``name`` as :meth:`override` reads it."""
        setattr(self, f"{name}_unlimited", value == UNLIMITED)
        setattr(self, name, None if value == UNLIMITED else value)


class UsageAccount(models.Model):
    """A user's running totals, one row, kept in step with the ledger, so that admission checks
    and reserves against every limit in one conditional upsert of one row.

    ``day_used``/``month_used``: tokens reserved or used in the day/month starting at
    ``day_start``/``month_start`` (a row whose period has passed counts as 0 for the current
    one: the first admission of a new period restarts it); ``minute_used``: requests admitted
    in the minute starting at ``minute_start``; ``streams``: calls in flight.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    day_start = models.DateTimeField()
    day_used = models.BigIntegerField(default=0)
    month_start = models.DateTimeField()
    month_used = models.BigIntegerField(default=0)
    minute_start = models.DateTimeField()
    minute_used = models.IntegerField(default=0)
    streams = models.IntegerField(default=0)

    def __str__(self) -> str:
        # The month as the deployment counts it (the row holds its start in UTC).
        return f"Usage of {self.user} since {timezone.localtime(self.month_start):%Y-%m-%d}"


class SignInFailures(models.Model):
    """Failed sign-ins counted per key (an account name from an address, an address alone, or
    a browser that signed in to the account before) in a window that starts with the first
    failure: past their allowances, sign-in is refused until the window ends (the rule:
    ``conversations.signin``)."""

    key = models.CharField(max_length=300, primary_key=True)
    window_start = models.DateTimeField()
    failures = models.IntegerField(default=0)

    class Meta:
        verbose_name_plural = "sign-in failures"

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} since {self.window_start:%Y-%m-%d %H:%M}"


class LinkRequests(models.Model):
    """Anonymous requests to share links from one client address in one minute (counted by
    ``conversations.link_limits``; its table is unlogged, see migration 0019)."""

    pk = models.CompositePrimaryKey("window_start", "address")
    window_start = models.DateTimeField()
    address = models.TextField()
    requests = models.IntegerField(default=0)

    class Meta:
        verbose_name_plural = "link requests"

    def __str__(self) -> str:
        return f"{self.address}: {self.requests} in the minute from {self.window_start:%H:%M}"


class ModelPrice(models.Model):
    """Prices of a model from a date on (USD per 1M tokens); a call is costed at its day's price."""

    model = models.ForeignKey(ModelConfig, on_delete=models.CASCADE, related_name="prices")
    effective_from = models.DateField()
    input_cache_hit = models.DecimalField(
        max_digits=10, decimal_places=4, validators=[NOT_NEGATIVE]
    )
    input_cache_miss = models.DecimalField(
        max_digits=10, decimal_places=4, validators=[NOT_NEGATIVE]
    )
    output = models.DecimalField(max_digits=10, decimal_places=4, validators=[NOT_NEGATIVE])

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="one_price_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from}"


class AuditEntry(models.Model):
    """Who changed what, when, before and after: policies, limits, models, keys, shares."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who it was, as a name: kept when the account is deleted later (``actor`` is then null).
    actor_name = models.CharField("actor", max_length=150, blank=True)
    action = models.CharField(max_length=40)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit log"
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target")]

    def __str__(self) -> str:
        # In TIME_ZONE, as the admin shows the entry's time elsewhere (the entry's own page
        # shows no other).
        at = timezone.localtime(self.at)
        return f"{at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target_type} {self.target_repr}"


# --- the API ---------------------------------------------------------------------------------------


class ApiKey(models.Model):
    """A personal key for the DeepSeek-compatible API: shown once, stored as a SHA-256 hash."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a key.")
    hashed = models.CharField(max_length=64, unique=True)
    save_history = models.BooleanField(
        default=False, help_text="Record API conversations in the user's chats."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# --- teams and sharing ----------------------------------------------------------------------------


# The advisory lock key of :meth:`Team.hold_the_set` (any constant of our own).
_TEAM_SET_LOCK = 0x7465616D73000001


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hold_the_set() -> None:
        """Until the current transaction ends, no other transaction that holds it too creates
        or deletes a team (the admin's do). Whether a team is the first or the last decides
        who sees every conversation shared with no team, and what is announced: two first
        teams created at once each found no other and both announced, two last teams deleted
        at once each found the other and neither did. They queue here instead, and the second
        sees the first's team, or its absence. Outside a transaction: no effect."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_TEAM_SET_LOCK])


class SharingSettings(models.Model):
    """Deployment-wide sharing choices, made by the admin (one row, edited in the admin and
    audited like the rest)."""

    allow_public_links = models.BooleanField(
        default=False,
        help_text="Share links open without signing in (read-only). Off: a viewer signs in first.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "sharing settings"

    def __str__(self) -> str:
        return "Sharing settings"

    @classmethod
    def current(cls) -> SharingSettings:
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class ShareLink(models.Model):
    """A read-only link to a conversation as it is now; the token is stored hashed."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="share_links"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    hashed = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Link to {self.conversation}"


class ShareLinkOpen(models.Model):
    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="opens")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.link} opened by {self.user or 'anonymous'} at {self.at:%Y-%m-%d %H:%M}"
