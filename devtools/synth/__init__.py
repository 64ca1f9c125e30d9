"""The synthetic province: `doudi synth` and the data every test and the demo run on.

- `identity`   resident ID numbers (GB 11643) and Chinese names, vectorised
- `geography`  counties (real GB/T 2260 codes of Shanxi), townships, villages
- `world`      the true state: people, households, members, and the events of each
               quarter (deaths, detentions, certificates, students, settlements)
- `messiness`  how departments write values (ID damage, dates, money, names)
- `extracts`   the world rendered as each department's delivery, with its messiness
- `truth`      the true links and the warnings RULES.md says must be raised
- `writer`     files on disk: inbox layout, encodings, Excel, and `truth/`

Everything is numpy/polars over whole columns; there is no Python loop per person.
"""
