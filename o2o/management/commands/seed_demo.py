from django.core.management.base import BaseCommand, CommandError

from merchants.demo import demo_seed
from orders.demo import demo_orders_seed


class Command(BaseCommand):
    help = (
        "Create the demo merchants, stores, staff, products, promotions, members and orders "
        "(idempotent: a second run changes nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--password", required=True, help="Password for every demo login.")

    def handle(self, *args, password: str, **options):
        if not password:
            # `--password ""` (an unset variable in a script) would make logins no form accepts.
            raise CommandError("--password must not be empty.")
        logins = demo_seed(password=password)
        demo_orders_seed()
        for merchant, usernames in logins.items():
            self.stdout.write(f"{merchant}: {', '.join(usernames)}")
