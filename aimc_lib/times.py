"""Names for times after programming, in seconds, and the time grid of the drift experiments."""
from __future__ import annotations

MINUTE_S = 60.0
HOUR_S = 3600.0
DAY_S = 86_400.0
MONTH_S = 30 * DAY_S
YEAR_S = 365 * DAY_S

#: One point per decade over the figure's range 1e-5 ... 1e5 s, plus 1 hour, 1 day, 1 month and 1 year.
DEFAULT_TIMES_S = sorted([10.0 ** k for k in range(-5, 6)] + [HOUR_S, DAY_S, MONTH_S, YEAR_S])

#: The times the results note reports (1 s, 1 h, 1 day, 1 month and 1 year after programming).
REPORT_TIMES_S = {"1 s": 1.0, "1 h": HOUR_S, "1 day": DAY_S, "1 month": MONTH_S, "1 year": YEAR_S}

#: The grid of the periphery results, the default grid plus 1 minute (the first point of aihwkit's tutorial).
PERIPHERY_TIMES_S = sorted(DEFAULT_TIMES_S + [MINUTE_S])
