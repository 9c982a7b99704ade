"""The audit log keeps who acted as a name: deleting that account later (``actor`` becomes
null) no longer blanks the "who" of every entry it made. Existing entries get their actor's
current name."""

from typing import Any

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def name_the_actors(apps: Any, schema_editor: Any) -> None:
    AuditEntry = apps.get_model("conversations", "AuditEntry")
    User = apps.get_model("conversations", "User")
    AuditEntry.objects.filter(actor__isnull=False).update(
        actor_name=Subquery(User.objects.filter(pk=OuterRef("actor_id")).values("username")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0013_prices_are_never_negative"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="actor_name",
            field=models.CharField(blank=True, max_length=150, verbose_name="actor"),
        ),
        migrations.RunPython(name_the_actors, migrations.RunPython.noop),
    ]
