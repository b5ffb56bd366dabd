"""Drives a staff and a patient session through a client generated from the live spec.

The client is made by openapi-python-client, which knows nothing about this service but its
/openapi.json: its models parse every answer strictly (a `null` where the spec promises a
string raises), and an answer whose status the spec does not list raises too. So a session
that runs to the end here is a session an integrator's generated client can run.

Run by .ci/schemathesis against a freshly started instance:

    python .ci/client_check.py --base-url http://127.0.0.1:PORT --spec openapi.json \
        --generator .../openapi-python-client --out DIR \
        --admin-email EMAIL --admin-password PASSWORD
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "frontdesk_client"


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def generate(generator: str, spec: Path, out: Path) -> Path:
    """Generates the client package under `out` and returns the folder that holds it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    config = out / "generator.json"
    # No formatter hooks: the generated code is imported, not read.
    config.write_text(json.dumps({"project_name_override": PACKAGE, "package_name_override": PACKAGE, "post_hooks": []}))
    result = subprocess.run(
        [generator, "generate", "--path", str(spec), "--meta", "none", "--config", str(config), "--output-path", str(out / PACKAGE)],
        capture_output=True,
        text=True,
        cwd=out,
    )
    print(result.stdout.strip())
    if result.returncode != 0 or not (out / PACKAGE / "__init__.py").exists():
        print(result.stderr, file=sys.stderr)
        raise CheckFailed(f"openapi-python-client failed (exit {result.returncode})")
    # Anything it could not turn into code is a spec it could not read.
    warnings = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if "WARNING" in line.upper() and "ruff" not in line]
    if any("Unable to" in line or "Cannot" in line for line in warnings):
        raise CheckFailed("openapi-python-client could not read parts of the spec:\n" + "\n".join(warnings))
    return out


class Operations:
    """The generated module of each operation, found by method and path rather than by the
    generator's naming rules, so renamed tags or operation ids do not break the check."""

    KWARGS = re.compile(r'"method":\s*"(?P<method>\w+)",\s*"url":\s*"(?P<url>[^"]+)"')

    def __init__(self, package_dir: Path) -> None:
        self.modules: dict[tuple[str, str], str] = {}
        for path in sorted((package_dir / "api").glob("*/*.py")):
            if path.name == "__init__.py":
                continue
            match = self.KWARGS.search(path.read_text())
            if match:
                name = f"{PACKAGE}.api.{path.parent.name}.{path.stem}"
                self.modules[(match["method"].upper(), match["url"])] = name

    def __call__(self, method: str, path: str) -> ModuleType:
        key = (method.upper(), path)
        if key not in self.modules:
            raise CheckFailed(f"the generated client has no operation {method} {path}")
        return importlib.import_module(self.modules[key])


def call(op: ModuleType, expected: int, what: str, **kwargs: Any) -> Any:
    """Calls an operation through the generated client; anything but `expected` fails."""
    from frontdesk_client import errors
    from frontdesk_client.models import Problem

    try:
        response = op.sync_detailed(**kwargs)
    except errors.UnexpectedStatus as e:
        raise CheckFailed(f"{what}: status {e.status_code} is not in the spec: {e.content[:500]!r}") from e
    except (KeyError, TypeError, ValueError) as e:
        raise CheckFailed(f"{what}: the generated client could not parse the answer: {e!r}") from e
    status = int(response.status_code)
    if status != expected:
        raise CheckFailed(f"{what}: expected {expected}, got {status}: {response.content[:500]!r}")
    if isinstance(response.parsed, Problem):
        raise CheckFailed(f"{what}: answered a problem document: {response.content[:500]!r}")
    print(f"  ok  {what} -> {status}")
    return response.parsed


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def staff_session(ops: Operations, base_url: str, email: str, password: str) -> dict[str, Any]:
    from frontdesk_client import AuthenticatedClient, Client, models
    from frontdesk_client.types import Unset

    print("staff session")
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    login = call(
        ops("POST", "/api/v1/auth/login"),
        200,
        "sign in",
        client=anonymous,
        body=models.LoginRequest(email=email, password=password),
    )
    check(bool(login.token), "sign-in returned no token")
    # An admin has no practitioner record: the spec must let this be null.
    check(login.staff.practitioner_id is None, f"an admin has practitioner_id {login.staff.practitioner_id!r}")
    staff = AuthenticatedClient(base_url=base_url, token=login.token, raise_on_unexpected_status=True)

    me = call(ops("GET", "/api/v1/auth/me"), 200, "who am I", client=staff)
    check(me.email == login.staff.email, "auth/me names someone else")

    practitioners = call(ops("GET", "/api/v1/staff/practitioners"), 200, "list practitioners", client=staff, per_page=100)
    services = call(ops("GET", "/api/v1/staff/services"), 200, "list services", client=staff, per_page=100)
    check(practitioners.total > 0 and services.total > 0, "the demo clinic has no practitioners or services")
    by_id = {s.id: s for s in services.items}
    pairs = [
        (p, by_id[sid])
        for p in practitioners.items
        if p.active and p.online_bookable
        for sid in p.service_ids
        if sid in by_id and by_id[sid].active and by_id[sid].online_bookable
        # One-to-one services: classes (capacity above 1) have sessions, not slots.
        and by_id[sid].capacity == 1
    ]
    check(bool(pairs), "no active practitioner offers an active service")
    practitioner, service = pairs[0]
    # Policy overrides are null when the clinic default applies.
    for s in services.items:
        check(not isinstance(s.policy, Unset), f"service {s.slug} has no policy object")

    call(ops("GET", "/api/v1/staff/practitioners/{id}/working-hours"), 200, "working hours", client=staff, id=str(practitioner.id))

    today = dt.date.today()
    calendar = call(
        ops("GET", "/api/v1/staff/calendar"),
        200,
        "calendar for a week",
        client=staff,
        from_=today.isoformat(),
        to=(today + dt.timedelta(days=6)).isoformat(),
    )
    check(isinstance(calendar.practitioners, list), "the calendar lists no practitioners")

    # A phone booking on the first free slot at least two days out.
    slot = first_slot(ops, staff, service.id, practitioner.id, not_before=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2))
    booked = call(
        ops("POST", "/api/v1/staff/bookings"),
        201,
        "staff booking",
        client=staff,
        body=models.StaffBookingRequest(
            service_id=service.id,
            practitioner_id=practitioner.id,
            start=slot.start,
            patient=models.StaffPatientInput(name="Phone Caller", phone="020 7946 0999"),
            notes="Booked by phone",
        ),
    )
    check(booked.booking.status == "confirmed", f"staff booking is {booked.booking.status}")
    # Booked without an email address: the patient's email is null.
    check(booked.booking.patient.email is None, "a patient booked without email has one")

    listed = call(
        ops("GET", "/api/v1/staff/bookings"),
        200,
        "list bookings",
        client=staff,
        practitioner_id=practitioner.id,
        per_page=100,
    )
    check(any(b.id == booked.booking.id for b in listed.items), "the new booking is not in the list")
    call(ops("GET", "/api/v1/staff/bookings/{id}"), 200, "read the booking", client=staff, id=str(booked.booking.id))

    feed = ops("GET", "/api/v1/staff/practitioners/{id}/feed")
    first = call(feed, 200, "feed link (made now)", client=staff, id=str(practitioner.id))
    check(isinstance(first.url, str) and "/api/v1/feeds/" in first.url, f"the first feed answer has no URL: {first.url!r}")
    again = call(feed, 200, "feed link (already made)", client=staff, id=str(practitioner.id))
    check(again.url is None, "the feed URL was shown twice")

    call(ops("GET", "/api/v1/staff/patients"), 200, "list patients", client=staff)
    call(ops("GET", "/api/v1/staff/outbox"), 200, "list outbox", client=staff)
    call(ops("GET", "/api/v1/staff/enquiries"), 200, "list enquiries", client=staff)
    call(ops("GET", "/api/v1/staff/users"), 200, "list staff users", client=staff)
    call(ops("GET", "/api/v1/staff/audit"), 200, "read the audit log", client=staff)

    call(ops("POST", "/api/v1/auth/logout"), 204, "sign out", client=staff)
    from frontdesk_client import errors

    try:
        after = ops("GET", "/api/v1/auth/me").sync_detailed(client=staff)
    except errors.UnexpectedStatus as e:
        raise CheckFailed(f"auth/me after sign-out: status {e.status_code} is not in the spec") from e
    check(int(after.status_code) == 401, f"a revoked token still works ({after.status_code})")
    check(isinstance(after.parsed, models.Problem) and after.parsed.code == "unauthorized", "401 is not a problem document")
    print("  ok  revoked token -> 401 problem")
    return {"service_id": service.id, "practitioner_id": practitioner.id}


def first_slot(ops: Operations, client: Any, service_id: uuid.UUID, practitioner_id: uuid.UUID | None, not_before: dt.datetime, skip: set[str] = frozenset()) -> Any:
    """The first listed slot starting at or after `not_before`, searching up to two months."""
    kwargs: dict[str, Any] = {"service_id": service_id}
    if practitioner_id is not None:
        kwargs["practitioner_id"] = practitioner_id
    start = not_before.date()
    for week in range(9):
        frm = start + dt.timedelta(days=7 * week)
        found = call(
            ops("GET", "/api/v1/availability"),
            200,
            f"availability from {frm}",
            client=client,
            from_=frm.isoformat(),
            to=(frm + dt.timedelta(days=6)).isoformat(),
            **kwargs,
        )
        for slot in found.slots:
            if instant(slot.start) >= not_before and slot.start not in skip:
                return slot
    raise CheckFailed("no free slot in the next two months")


def patient_session(ops: Operations, base_url: str) -> None:
    from frontdesk_client import Client, models

    print("patient session")
    patient = Client(base_url=base_url, raise_on_unexpected_status=True)
    clinic = call(ops("GET", "/api/v1/clinic"), 200, "clinic details", client=patient)
    services = call(ops("GET", "/api/v1/services"), 200, "list services", client=patient)
    # A one-to-one service: a class (capacity above 1) is booked by seats, not slots.
    one_to_one = [s for s in services if s.capacity == 1]
    check(len(one_to_one) > 0, "no bookable one-to-one services")
    service = one_to_one[0]
    call(ops("GET", "/api/v1/services/{id}"), 200, "read a service", client=patient, id=str(service.id))
    practitioners = call(ops("GET", "/api/v1/practitioners"), 200, "who offers it", client=patient, service_id=service.id)
    check(len(practitioners) > 0, f"nobody offers {service.slug}")

    nxt = call(ops("GET", "/api/v1/availability/next"), 200, "next free slot", client=patient, service_id=service.id)
    check(nxt.slot is not None, "no next slot for a bookable service")

    # Far enough ahead that cancelling and rescheduling are still allowed.
    notice = max(clinic.policy.cancel_notice_hours, clinic.policy.reschedule_notice_hours)
    not_before = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=notice + 24)
    slot = first_slot(ops, patient, service.id, None, not_before)
    email = f"patient-{uuid.uuid4().hex[:8]}@example.com"
    created = call(
        ops("POST", "/api/v1/bookings"),
        201,
        "book a slot",
        client=patient,
        idempotency_key=str(uuid.uuid4()),
        body=models.BookingRequest(
            service_id=service.id,
            practitioner_id=slot.practitioner_id,
            start=slot.start,
            patient=models.PatientInput(name="Client Check", email=email),
            consent=models.ConsentInput(privacy=True, marketing=False),
        ),
    )
    check(created.booking.status == "confirmed", f"booking is {created.booking.status}")
    check(created.booking.patient.phone is None, "a booking made without a phone has one")
    token = created.manage_token
    check(created.manage_url.endswith("/manage/" + token), f"manage_url {created.manage_url} does not carry the token")

    manage = ops("GET", "/api/v1/manage/{token}")
    opened = call(manage, 200, "open the manage link", client=patient, token=token)
    check(opened.booking.id == created.booking.id, "the manage link opens another booking")
    check(opened.can_cancel and opened.can_reschedule, "a booking days ahead cannot be changed")

    later = first_slot(ops, patient, service.id, slot.practitioner_id, instant(slot.start) + dt.timedelta(hours=1), skip={slot.start})
    moved = call(
        ops("POST", "/api/v1/manage/{token}/reschedule"),
        200,
        "reschedule",
        client=patient,
        token=token,
        body=models.RescheduleRequest(start=later.start),
    )
    check(moved.booking.start == later.start and moved.booking.id == created.booking.id, "the reschedule did not move the booking")

    cancelled = call(
        ops("POST", "/api/v1/manage/{token}/cancel"),
        200,
        "cancel",
        client=patient,
        token=token,
        body=models.CancelRequest(reason="Client check"),
    )
    check(cancelled.booking.status == "cancelled", f"cancelled booking is {cancelled.booking.status}")
    reopened = call(manage, 200, "open the link again", client=patient, token=token)
    check(reopened.booking.status == "cancelled" and not reopened.can_cancel, "the cancellation did not stick")

    accepted = call(
        ops("POST", "/api/v1/enquiries"),
        202,
        "send an enquiry",
        client=patient,
        body=models.EnquiryRequest(
            name="Client Check",
            email=email,
            topic=models.Topic.GENERAL,
            message="Do you have parking nearby?",
            preferred_contact=models.PreferredContact.EMAIL,
            consent=models.EnquiryConsent(privacy=True),
        ),
    )
    check(bool(accepted.reference), "the enquiry has no reference")

    unknown = manage.sync_detailed(client=patient, token="not-a-real-token")
    check(int(unknown.status_code) == 404 and isinstance(unknown.parsed, models.Problem), "an unknown manage token is not a 404 problem")
    print("  ok  unknown manage token -> 404 problem")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--generator", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--admin-email", required=True)
    parser.add_argument("--admin-password", required=True)
    args = parser.parse_args()

    try:
        out = generate(args.generator, args.spec, args.out)
        sys.path.insert(0, str(out))
        ops = Operations(out / PACKAGE)
        staff_session(ops, args.base_url, args.admin_email, args.admin_password)
        patient_session(ops, args.base_url)
    except CheckFailed as e:
        print(f"client check failed: {e}", file=sys.stderr)
        return 1
    print("client check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
