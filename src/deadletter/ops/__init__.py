"""Operations on failures: the service layer under the HTTP API and the CLI."""
