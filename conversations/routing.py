from django.urls import path, re_path

from conversations.consumers import AccountConsumer, ConversationConsumer, NoSuchSocket

websocket_urlpatterns = [
    path("ws/conversations/<uuid:conversation_id>/", ConversationConsumer.as_asgi()),
    path("ws/account/", AccountConsumer.as_asgi()),
    re_path(r"", NoSuchSocket.as_asgi()),  # any other path: 4404, not a 500
]
