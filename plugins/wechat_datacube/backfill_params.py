"""Choices and defaults of the bulk backfill's run parameters.

Shared by the DAG's params form (built at every parse of the DAG file) and the planner
(run time). Kept apart from :mod:`wechat_datacube.backfill_plan` so that parsing the DAG
file does not import the planner and everything it needs.
"""

#: ``missing``: skip windows already loaded; ``all``: fetch everything again.
REPROCESS_MODES: tuple[str, ...] = ("missing", "all")
#: Windows per mapped task unless the DAG run asks otherwise (widened to honour max_map_length).
DEFAULT_WINDOWS_PER_TASK = 15
