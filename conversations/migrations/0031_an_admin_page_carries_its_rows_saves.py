"""The count of the saves of the rows the admin edits on a page of their own (an account with
its limits, a model with its dated prices, a policy): the page carries the count it was opened
at, and a save from a page opened before another admin's save is refused instead of writing
back, without a word, every field as it had read it (``admin.StillStoredForm``).

A column with a constant default: no row is rewritten, and a process of the previous release
inserts rows without it while a deployment rolls (``db_default``)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0030_an_output_cap_is_at_least_one"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelconfig",
            name="version",
            field=models.PositiveIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name="policy",
            name="version",
            field=models.PositiveIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name="user",
            name="version",
            field=models.PositiveIntegerField(db_default=0, default=0, editable=False),
        ),
    ]
