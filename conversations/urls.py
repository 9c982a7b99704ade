from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.conversation_list, name="conversation-list"),
    path("c/new/", views.conversation_create, name="conversation-create"),
    path("c/import/", views.conversation_import, name="conversation-import"),
    path("c/<uuid:conversation_id>/", views.conversation_detail, name="conversation-detail"),
    path("c/<uuid:conversation_id>/rename/", views.conversation_rename, name="conversation-rename"),
    path("c/<uuid:conversation_id>/delete/", views.conversation_delete, name="conversation-delete"),
    path(
        "c/<uuid:conversation_id>/restore/",
        views.conversation_restore,
        name="conversation-restore",
    ),
    path(
        "c/<uuid:conversation_id>/settings/",
        views.conversation_settings,
        name="conversation-settings",
    ),
    path(
        "c/<uuid:conversation_id>/export.<str:fmt>",
        views.conversation_export,
        name="conversation-export",
    ),
]
