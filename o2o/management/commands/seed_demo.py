from django.core.management.base import BaseCommand

from merchants.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo merchants, stores, staff and products (idempotent: a second run changes nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--password", required=True, help="Password for every demo login.")

    def handle(self, *args, password: str, **options):
        logins = demo_seed(password=password)
        for merchant, usernames in logins.items():
            self.stdout.write(f"{merchant}: {', '.join(usernames)}")
