"""Background work: queue setup, jobs, the shared rate limiter and the retry policy."""
