"""Delivery options shared by Celery tasks (SPEC §11).

The settings make every task `acks_late` with `reject_on_worker_lost`: a message is acknowledged only
once its task finished, so a worker killed mid-task loses nothing. Two kinds of task follow from it:

- A task that processes one object (`calls.advance_call`, `calls.deliver_webhook`) must bound its
  redeliveries, or a task that kills its worker would be redelivered forever: it claims its row in
  the database first and counts the claims (`calls.leases.claim`, `TASK_MAX_DELIVERIES`).
- A periodic job that beat sends again anyway (a sweep, a purge, the heartbeat, the OAuth2 token
  refresh) keeps nothing in its message: its work is found in the database on every run, and it is
  idempotent. It uses `PERIODIC`: acknowledged when it starts, so a run that kills its worker is
  dropped rather than redelivered (zero redeliveries, nothing to count), and the next beat tick
  starts over from the database.
"""

from __future__ import annotations

PERIODIC = {"acks_late": False, "ignore_result": True}
