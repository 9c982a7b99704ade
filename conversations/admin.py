from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from conversations.models import Conversation, Message, ModelConfig, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    pass


@admin.register(ModelConfig)
class ModelConfigAdmin(admin.ModelAdmin):
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
    list_editable = ["enabled"]
    fieldsets = [  # type: ignore[assignment]
        (None, {"fields": ["name", "display_name", "enabled", "sort_order"]}),
        ("Upstream", {"fields": ["upstream_model", "thinking", "reasoning_passback"]}),
        ("Capabilities", {"fields": ["supports_tools", "supports_json", "supports_logprobs"]}),
        ("Limits", {"fields": ["context_window", "max_output_tokens", "default_max_tokens"]}),
        (
            "Prices (USD per 1M tokens)",
            {"fields": ["price_input_cache_hit", "price_input_cache_miss", "price_output"]},
        ),
    ]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "role", "author", "status", "finish_reason", "content"]
    readonly_fields = ["created_at", "role", "author", "status", "finish_reason", "content"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "model", "visibility", "updated_at", "deleted_at"]
    list_filter = ["visibility", "model"]
    search_fields = ["title", "owner__username"]
    raw_id_fields = ["owner"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Read-mostly: messages are written by the chat, not edited by hand."""

    list_display = ["id", "conversation", "role", "author", "status", "finish_reason", "created_at"]
    list_filter = ["status", "role"]
    search_fields = ["content", "client_id"]

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field.name for field in Message._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
