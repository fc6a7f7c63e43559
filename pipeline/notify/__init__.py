"""Notify stage: tell people by email — alerts, the daily digest, the weekly bulletin.

    alerts.py    unsent Alert rows -> one grouped email per person -> outbox
    digest.py    the morning digest (gather from the store, compose purely)
    bulletin.py  the weekly joint bulletin (gather, compose, write published/bulletins/)
    outbox.py    the email outbox: enqueue once per key, deliver with retries
    mail.py      the SMTP edge: EmailMessage building and smtplib, errors translated
    templates.py Jinja email templates (templates/email/*.j2) with CSS inlined
    commands.py  CLI adapters (digest, bulletin, mail test) and the scheduler hooks

Everything a recipient reads is Simplified Chinese; code, logs and the CLI are English.
"""
