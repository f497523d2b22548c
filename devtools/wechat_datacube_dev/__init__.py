"""Development tools for the airflow-wechat-datacube provider; not shipped in its wheel.

* :mod:`.simulator` - a WeChat API stand-in with its own facts (never the provider's registry);
* :mod:`.localrun` - ``make run`` / ``make demo``: PostgreSQL, the simulator and Airflow locally;
* :mod:`.docgen` - ``make docs``: docs/tables.md and the README's generated sections;
* :mod:`.connections` - the ``wechat`` Airflow connection for tests, benchmarks and the launcher.
"""
