"""Rate limits: every limit and its keys (policy.py), decided by SlowAPI's Limiter, and the
`limits` storage it counts in (storage.py). Spent by service.edge.admission and, for the
attempts a service makes against an account, through service.services.attempts."""
