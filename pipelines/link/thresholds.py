"""The match probabilities a link needs before a rule may act on it — in one place.

A false link that raises an ineligibility warning can stop a living person's benefit, so
those rules only read links at or above INELIGIBILITY; need warnings (which at worst send
a caseworker to offer help that is not needed) read links at or above NEED.
"""

INELIGIBILITY = 0.99
NEED = 0.90
