"""deadletter: background jobs in which no failed job is ever lost."""
