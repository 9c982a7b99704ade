from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import permission_required
from django.urls import include, path

from conversations import sharing_views, signin, usage_views, views

admin.site.site_header = "DeepSeek team chat — administration"
admin.site.site_title = "DeepSeek team chat"
admin.site.login_form = signin.AdminSignInForm

# The usage dashboard and its export show everyone's ledger: the admin's own permission to view
# usage records, not only staff status (a staff account without it gets 403 there too).
ledger_readers = permission_required("conversations.view_usagerecord", raise_exception=True)

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("accounts/login/", signin.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # Staff (admin_view), and of staff only those who may read the ledger in the admin.
    path(
        "admin/usage/",
        admin.site.admin_view(ledger_readers(usage_views.dashboard)),
        name="usage-dashboard",
    ),
    path(
        "admin/usage/export.csv",
        admin.site.admin_view(ledger_readers(usage_views.export_csv)),
        name="usage-export",
    ),
    # The admin's own page for a staff account's password, replaced (views.admin_password_change).
    path(
        "admin/password_change/",
        admin.site.admin_view(views.admin_password_change),
        name="admin-password-change",
    ),
    path("admin/", admin.site.urls),
    path("usage/", usage_views.my_usage, name="my-usage"),
    path("team/", sharing_views.team_history, name="team-history"),
    path("search/", sharing_views.search_page, name="search"),
    path("s/<str:token>/", sharing_views.shared_link, name="shared-link"),
    path(
        "s/<str:token>/messages.json",
        sharing_views.shared_link_messages,
        name="shared-link-messages",
    ),
    path(
        "c/<uuid:conversation_id>/sharing/", sharing_views.sharing_page, name="conversation-sharing"
    ),
    path(
        "c/<uuid:conversation_id>/sharing/visibility/",
        sharing_views.change_visibility,
        name="conversation-visibility",
    ),
    path(
        "c/<uuid:conversation_id>/sharing/collaborators/",
        sharing_views.change_collaborators,
        name="conversation-collaborators",
    ),
    path(
        "c/<uuid:conversation_id>/sharing/links/",
        sharing_views.create_link,
        name="conversation-links",
    ),
    path("c/<uuid:conversation_id>/fork/", sharing_views.fork, name="conversation-fork"),
    path("links/<int:link_id>/revoke/", sharing_views.revoke_link, name="share-link-revoke"),
    path("usage/summary.json", usage_views.summary_json, name="usage-summary"),
    path("", include("conversations.api_urls")),
    path("", include("conversations.urls")),
]
