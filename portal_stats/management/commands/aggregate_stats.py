"""Run the aggregator (or retention) by hand: the same service calls the Celery beat jobs make."""

from django.core.management.base import BaseCommand, CommandError

from portal_stats import services


class Command(BaseCommand):
    help = "Fold viewer reports into minute buckets and hour/day rollups (default: one beat run)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="start", type=int, help="re-fold from this Unix time (with --until)")
        parser.add_argument("--until", dest="end", type=int, help="re-fold up to this Unix time (exclusive)")
        parser.add_argument("--purge", action="store_true", help="apply retention instead")

    def handle(self, *args, start=None, end=None, purge=False, **options) -> None:
        if purge:
            self.stdout.write(f"deleted: {services.stats_purge()}")
            return
        if (start is None) != (end is None):
            raise CommandError("give both --from and --until, or neither")
        if start is None:
            start, end = services.stats_aggregate_pending()
        elif start >= end:
            raise CommandError("--from must be before --until")
        else:
            services.stats_aggregate(start=start, end=end)
        self.stdout.write(f"folded minutes [{start}, {end})")
