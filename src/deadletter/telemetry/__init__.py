"""Failures and runs reported to tools outside deadletter (Sentry), each behind its
optional extra: nothing here is imported unless its setting turns it on."""
