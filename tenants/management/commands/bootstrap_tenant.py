from __future__ import annotations

from django.core.management.base import BaseCommand

from tenants.services import bootstrap_tenant


class Command(BaseCommand):
    help = "Create a tenant (optionally with a staff user who owns it) and print a new owner API key on the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="The tenant's name")
        parser.add_argument("--admin-user", help="Username of a staff user to create (or reuse) as the tenant's owner")
        parser.add_argument("--password", help="Password for --admin-user")
        parser.add_argument("--email", default="", help="Email for --admin-user")

    def handle(self, *args, **options) -> None:
        tenant, _key, raw_key = bootstrap_tenant(
            options["name"], admin_user=options["admin_user"], password=options["password"], email=options["email"]
        )
        self.stdout.write(f"Tenant {tenant.name} created (slug {tenant.slug}, id {tenant.id}).")
        if options["admin_user"]:
            self.stdout.write(f"Staff user {options['admin_user']} is its owner.")
        self.stdout.write("Owner API key (shown once):")
        self.stdout.write(raw_key)
