"""The API's routes, a router per kind of work; each module's `router(ctx)` builds it."""
