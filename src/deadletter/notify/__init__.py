"""Notifications and alerts: PII redaction (`redact`) and delivery through Apprise (`deliver`)."""
