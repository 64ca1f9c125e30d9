"""The quarter partitions every asset shares (`2025Q3`).

A static list from 2020Q1 to 2039Q4: Dagster's time-window partitions cannot name a
quarter `2025Q3`, and a fixed list keeps `doudi run --quarter` independent of any sensor
having registered the quarter first.
"""

import dagster as dg

from pipelines.quarters import Quarter

FIRST, LAST = Quarter(2020, 1), Quarter(2039, 4)
QUARTER_LABELS = [str(FIRST + i) for i in range(LAST - FIRST + 1)]
quarters = dg.StaticPartitionsDefinition(QUARTER_LABELS)
