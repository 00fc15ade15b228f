"""Workarounds for clickhouse-connect, kept in one place and tested against the pinned version.

``skip_pandas_probe``: every ``Client.insert`` asks whether the data is a pandas DataFrame
(``clickhouse_connect.driver.options.pd``), which imports pandas -- about half a second,
on the first insert of every process (seen in a py-spy profile of ``wcs-analytics replay``).
This project never inserts DataFrames (its inserts are column lists), so the probe is
answered with "no pandas" up front. Only when pandas is not imported already: a process
that uses pandas elsewhere keeps the library's own behaviour.
tests/integration/test_clickhouse_compat.py checks the hook still exists in the installed version.
"""

from __future__ import annotations

import sys

from clickhouse_connect.driver import options


def skip_pandas_probe() -> None:
    if "pandas" in sys.modules or "pd" in vars(options):
        return
    options.pd = None
    options.pd_time_test = None
