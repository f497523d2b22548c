"""The fault and abuse suite (``python -m reliability``, ``make reliability``).

R1 fault soak, R2 idempotent reruns, R3 kill -9 mid-write, R4 bad payloads, R5 permanent
errors, R6 secrets, R7 token concurrency, R8 PostgreSQL restarted mid-catchup, R9 HTML 502
pages and truncated bodies mid-catchup — against a real Airflow cluster, the simulator
over HTTP and real PostgreSQL; the outcome is published in ``docs/reliability.md``.
"""
