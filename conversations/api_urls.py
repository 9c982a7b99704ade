"""URLs of the API-key settings page. Included at the site root by ``chatsite/urls.py``.

The API's own paths (``/v1/chat/completions``, ``/models``, …) never reach Django: the ASGI
router in ``chatsite/asgi.py`` sends them to ``conversations.api_asgi``."""

from django.urls import path

from conversations import api

urlpatterns = [
    path("settings/api-keys/", api.api_keys_page, name="api-keys"),
    path("settings/api-keys/<int:key_id>/revoke/", api.api_key_revoke, name="api-key-revoke"),
    path("settings/api-keys/<int:key_id>/history/", api.api_key_history, name="api-key-history"),
]
