"""Running jobs: leasing, execution, heartbeats, retry policy, graceful shutdown."""
