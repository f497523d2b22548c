# The production image: official Airflow 3.3.2 plus this pipeline (docker-compose.yaml builds it).
#
#   docker build -t wechat-datacube-airflow:3.3.2 .
#
# Dependencies are installed at build time, never at container start
# (_PIP_ADDITIONAL_REQUIREMENTS is for quick checks only). The DAG files, the dashboard
# plugin and the accounts file are copied in as well, so the image runs without mounts;
# docker-compose.yaml mounts ./dags and ./include over them. The package itself is only
# in site-packages: a second copy under /opt/airflow/plugins (or a mounted ./plugins)
# would be shadowed by it anyway, because Airflow appends the plugins folder to sys.path
# - code changes take `docker-compose build`.
FROM apache/airflow:3.3.2

# apache-airflow is named again so pip can never up- or downgrade the image's Airflow while
# resolving requirements.txt (the image's own providers - celery, fab, redis, ... - stay as
# they are; constraints.txt is the local venv's freeze and is not applied here).
COPY --chown=airflow:root requirements.txt /opt/wechat-datacube/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/wechat-datacube/requirements.txt

# The airflow-wechat-datacube distribution: the wechat_datacube package and its provider
# entry point (connection type "wechat" in the UI). pip builds it from the same files as
# `make wheel` (pyproject.toml, README.md, plugins/), so the image holds the provider only:
# the development package (devtools/: simulator, launcher, doc generator) is never copied
# (tests/packaging/test_dockerfile.py). --no-deps: installed just above.
COPY --chown=airflow:root pyproject.toml README.md /opt/wechat-datacube/
COPY --chown=airflow:root plugins/ /opt/wechat-datacube/plugins/
RUN pip install --no-cache-dir --no-deps /opt/wechat-datacube

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/wechat_datacube_dashboard.py /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
ENV WECHAT_DATACUBE_ACCOUNTS=/opt/airflow/include/accounts.yaml
