"""URLs of the DeepSeek-compatible API (both base URLs: with and without ``/v1``) and of the
API-key settings page. Included at the site root by ``chatsite/urls.py``."""

from django.urls import path

from conversations import api

urlpatterns = [
    path("v1/chat/completions", api.chat_completions, name="api-chat-completions"),
    path("chat/completions", api.chat_completions),
    path("v1/models", api.list_models, name="api-models"),
    path("models", api.list_models),
    path("v1/user/balance", api.user_balance),
    path("user/balance", api.user_balance, name="api-balance"),
    path("settings/api-keys/", api.api_keys_page, name="api-keys"),
    path("settings/api-keys/<int:key_id>/revoke/", api.api_key_revoke, name="api-key-revoke"),
    path("settings/api-keys/<int:key_id>/history/", api.api_key_history, name="api-key-history"),
]
