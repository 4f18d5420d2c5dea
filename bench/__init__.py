"""The mesh benchmark: what a chat turn, a tool call and a session cost.

Run ``scripts/bench`` (``--quick`` for a short run, ``--json`` and ``--plot``
for machine-readable output). It starts its own Temporal dev server on free
ports, the three mesh workers as separate processes, and a bench worker of
its own for the *floor*: the same Temporal primitives a turn is built from
(an Update, an activity, a sync and a workflow-backed Nexus operation) with
nothing else in them, so each turn's latency can be read against what
Temporal alone costs on this machine. Last, a second mesh with tracing on
(``bench.tracing``) takes the same turns, to show what tracing costs.
"""
