from django.urls import path

from conversations.consumers import AccountConsumer, ConversationConsumer

websocket_urlpatterns = [
    path("ws/conversations/<uuid:conversation_id>/", ConversationConsumer.as_asgi()),
    path("ws/account/", AccountConsumer.as_asgi()),
]
