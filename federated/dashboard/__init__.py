"""The fleet's web dashboard: pages and ``/api/`` JSON over the coordinator's store, operator
actions behind a token (see docs/dashboard.md). Served by ``pifed server --dashboard`` beside
the gRPC service, or by ``pifed dashboard --db FILE`` for a stopped fleet (read-only)."""
