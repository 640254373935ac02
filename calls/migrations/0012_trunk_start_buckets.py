"""A trunk counts the starts of the last second by hundredth of a second, and keeps its latest start.

The ring held one entry per start (so every admission rewrote as many entries as the trunk's call
rate); it now holds at most 100 [centisecond, count] pairs whatever the rate. Each start is counted in
the hundredth it falls in, rounded up, so a start never leaves the window before it really does.
"""

import math

from django.db import migrations, models


def to_buckets(apps, schema_editor):
    SipTrunk = apps.get_model("calls", "SipTrunk")
    for trunk in SipTrunk.objects.exclude(recent_starts=[]).only("pk", "recent_starts"):
        starts = [float(t) for t in trunk.recent_starts or [] if isinstance(t, int | float) and not isinstance(t, bool)]
        buckets: dict[int, int] = {}
        for start in starts:
            buckets[math.ceil(start * 100)] = buckets.get(math.ceil(start * 100), 0) + 1
        SipTrunk.objects.filter(pk=trunk.pk).update(
            recent_starts=[[c, n] for c, n in sorted(buckets.items())], last_start=max(starts, default=None)
        )


def to_starts(apps, schema_editor):
    SipTrunk = apps.get_model("calls", "SipTrunk")
    for trunk in SipTrunk.objects.exclude(recent_starts=[]).only("pk", "recent_starts"):
        pairs = [p for p in trunk.recent_starts or [] if isinstance(p, list) and len(p) == 2]
        SipTrunk.objects.filter(pk=trunk.pk).update(recent_starts=[c / 100 for c, n in pairs for _ in range(n)])


class Migration(migrations.Migration):
    dependencies = [("calls", "0011_trunk_ring_uncompressed")]

    operations = [
        migrations.AddField(
            model_name="siptrunk",
            name="last_start",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(to_buckets, to_starts),
    ]
