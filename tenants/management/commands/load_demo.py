from __future__ import annotations

from django.core.management.base import BaseCommand

from tenants.demo import DEMO_PASSWORD, DEMO_USER, load_demo


class Command(BaseCommand):
    help = "Load (or refresh) the demo tenant and print how to log in."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the web server listens")

    def handle(self, *args, **options) -> None:
        tenant, raw_key = load_demo()
        base = options["base_url"].rstrip("/")
        self.stdout.write(self.style.SUCCESS(f"Demo tenant '{tenant.name}' is ready."))
        self.stdout.write(f"  Admin:     {base}/admin/   login {DEMO_USER} / {DEMO_PASSWORD}")
        self.stdout.write(f"  API docs:  {base}/api/docs/")
        self.stdout.write(f"  API key:   {raw_key}   (owner; new on every start)")
        self.stdout.write(f"  Try:       curl -H 'Authorization: Bearer {raw_key}' {base}/api/v1/api-keys")
        self.stdout.write(f"  Widget:    {base}/widget/demo/   (the chat widget on a demo product page)")
